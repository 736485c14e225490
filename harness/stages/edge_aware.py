"""upscale backend ``edge_aware``: interpolation that a map of the input's own edges constrains.

Self-guided: the map is computed from the input image itself, by another algorithm than the
interpolation, so it adds no information the input lacks -- it is edge-aware interpolation.
(Until issue 13 this backend was called ``guided``; ``guided`` is now the upsampler that follows
a full-resolution guide image from an earlier stage, :mod:`harness.stages.guided`.)
The map (``edges``) says *between which neighbouring pixels* there is an edge (a "cut", 0..1):

``canny``     OpenCV Canny edges of the luma (L2 gradient).  An edge pixel cuts, along each
              axis its gradient crosses (more than 22.5 deg off the edge), the boundary to
              the neighbour with the larger step -- Canny marks one of the two pixels of a
              transition, the cut goes where the transition is.
``sobel``     the Sobel derivative across each pixel boundary ([1, 2, 1] smoothing along it,
              a step of d levels gives 4 d, as Sobel's own gain), soft: 0 below ``low``,
              1 above ``high``, linear between.
``segments``  a graph-based segmentation (Felzenszwalb & Huttenlocher 2004, skimage
              ``felzenszwalb``, ``segment_scale``, sigma 0.5, ``min_size``): every
              boundary between two segments is cut.

``low`` / ``high`` are gradient thresholds in Sobel units; 0 picks them from the image's
gradient statistics: ``high`` = Otsu's threshold of the Sobel magnitude (at least 32, an
8-level step), ``low`` = ``high`` / 2 (Canny's 1:2 hysteresis ratio).

**Interpolation** (joint/"cross" upsampling in the spirit of Kopf et al. 2007, the map's
connectivity taking the place of the range kernel): from an *anchor* source pixel, each
of the output pixel's 4x4 bicubic taps (OpenCV's kernel, a = -0.75) is weighted by its
*reach*, the largest product of (1 - cut) over the monotone pixel paths from the anchor
to the tap, and the weights renormalised.  With no cut nearby that is plain bicubic: flat
regions stay smooth, texture keeps bicubic's detail.  Nothing is mixed across a cut, so
the two sides of an edge never blend and no negative lobe reaches across it (no ringing
halo).  Each of the 2x2 source pixels around the output pixel is tried as the anchor; the
estimate closest to the plain bicubic value ``b`` is kept (``e1``) and moved towards the
one most unlike it (``e2``, the far side of the edge) by ``b``'s coverage between them,
made ``k`` times steeper around 1/2: ``e1 + clip(1/2 + k (c - 1/2), 0, 1) (e2 - e1)``.
The edge falls where bicubic's crossing puts it, sub-pixel (diagonals stay smooth), but
is ``k`` times narrower: ``k = 1 + (scale - 1) coherence``, the coherence of the input's
structure tensor (1 along one straight edge: a step's transition is one output pixel;
~0 in texture and at corners, where orientations mix: bicubic's own transition, less
aliasing).  With ``clamp`` every output pixel is limited to the min..max of the input's
3x3 neighbourhood around its source pixel.

Cost: the scale^2 output phases are computed at the source resolution with fixed weights,
only where a cut lies within 2 px (elsewhere plain bicubic): ~0.2-0.4 s for 256x256 ->
512x512 on one core.  ``info`` records the map (``edges``), its ``edge_density`` (the share of the pixel boundaries it cuts, 0..1) and
``low`` / ``high`` or ``segments``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import ConfigError
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module

__all__ = ["EdgeAware", "EDGE_MAPS", "guidance_cuts", "gradient_thresholds", "edge_coherence", "constrained_upscale"]

EDGE_MAPS = ("canny", "sobel", "segments")
MIN_HIGH = 32.0  # the auto `high` floor, Sobel units: an 8-level step
_CROSS = 0.38  # cos(67.5 deg): a Canny edge cuts along an axis its gradient is within 67.5 deg of
_PAD = 2  # source pixels of (replicated) border: the 4x4 taps reach 2 px past an anchor
_CUBIC_A = -0.75  # OpenCV's INTER_CUBIC


# ----------------------------------------------------------------------------- guidance maps


def _luma(image: np.ndarray) -> np.ndarray:
    return cv2_module().cvtColor(np.ascontiguousarray(image), cv2_module().COLOR_RGB2GRAY)


def _boundary_gradients(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel derivative across each pixel boundary: ``gx`` (H, W-1) between (y, x) and (y, x+1),
    ``gy`` (H-1, W) between (y, x) and (y+1, x)."""
    f = luma.astype(np.float32)
    dx = np.pad(f[:, 1:] - f[:, :-1], ((1, 1), (0, 0)), mode="edge")
    dy = np.pad(f[1:] - f[:-1], ((0, 0), (1, 1)), mode="edge")
    return dx[:-2] + 2 * dx[1:-1] + dx[2:], dy[:, :-2] + 2 * dy[:, 1:-1] + dy[:, 2:]


def _sobel(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cv2 = cv2_module()
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return gx, gy


def gradient_thresholds(luma: np.ndarray, low: float = 0.0, high: float = 0.0) -> tuple[float, float]:
    """``(low, high)``: the given ones, or from the Sobel magnitude's statistics (see the module doc)."""
    if high <= 0:
        from skimage.filters import threshold_otsu

        gx, gy = _sobel(luma)
        mag = np.hypot(gx, gy)
        high = max(float(threshold_otsu(mag)) if float(mag.max()) > float(mag.min()) else 0.0, MIN_HIGH)
    if low <= 0:
        low = high / 2
    return float(low), float(high)


def edge_coherence(guide: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Coherence of the guide's gradients, ``((l1 - l2) / (l1 + l2))^2`` of the structure tensor
    (Sobel gradients, Gaussian window ``sigma``): 1 along a single straight edge, ~0 in texture
    or at corners where orientations mix, 0 where flat.  (H, W) float32."""
    cv2 = cv2_module()
    gx, gy = _sobel(_luma(guide))
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
                     for a in (gx * gx, gy * gy, gx * gy))
    diff = np.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy)
    return ((diff / (jxx + jyy + 16.0)) ** 2).astype(np.float32)  # +16: a 1-level step, so noise is not "coherent"


def guidance_cuts(guide: np.ndarray, kind: str, low: float = 0.0, high: float = 0.0, segment_scale: float = 100.0,
                  min_size: int = 16) -> tuple[np.ndarray, np.ndarray, dict]:
    """The guidance map of ``guide`` ((H, W, 3) uint8) as cuts between neighbouring pixels:
    ``(ch (H, W-1), cv (H-1, W), info)``, float32 in [0, 1] (1: an edge lies between them)."""
    luma = _luma(guide)
    if kind == "segments":
        from skimage.segmentation import felzenszwalb

        labels = felzenszwalb(guide, scale=segment_scale, sigma=0.5, min_size=min_size)
        ch = (labels[:, 1:] != labels[:, :-1]).astype(np.float32)
        cv = (labels[1:] != labels[:-1]).astype(np.float32)
        return ch, cv, {"segments": int(labels.max()) + 1}
    low, high = gradient_thresholds(luma, low, high)
    bx, by = _boundary_gradients(luma)
    info = {"low": round(low, 3), "high": round(high, 3)}
    if kind == "sobel":
        span = max(high - low, 1e-6)
        return (np.clip((np.abs(bx) - low) / span, 0, 1).astype(np.float32),
                np.clip((np.abs(by) - low) / span, 0, 1).astype(np.float32), info)
    if kind != "canny":
        raise ConfigError(f"upscale backend 'edge_aware': unknown edges {kind!r}; allowed: {', '.join(EDGE_MAPS)}")
    edges = cv2_module().Canny(luma, low, high, L2gradient=True) > 0
    gx, gy = _sobel(luma)
    mag = np.hypot(gx, gy) + 1e-6
    ch = np.zeros(bx.shape, np.float32)
    cv = np.zeros(by.shape, np.float32)
    for cut, b, g, axis in ((ch, bx, gx, 1), (cv, by, gy, 0)):
        crosses = edges & (np.abs(g) >= _CROSS * mag)
        ab = np.abs(b)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 1)
        ab = np.pad(ab, pad, constant_values=-1.0)  # boundary k of pixel i: before = i, after = i + 1
        n = crosses.shape[axis]
        before = ab.take(range(n), axis=axis)  # the boundary before pixel i
        after = ab.take(range(1, n + 1), axis=axis)  # the boundary after pixel i
        fwd = crosses & (after >= before)
        bwd = crosses & (after < before)
        if axis == 1:
            cut[:, :] = np.maximum(fwd[:, :-1], bwd[:, 1:])
        else:
            cut[:, :] = np.maximum(fwd[:-1], bwd[1:])
    return ch, cv, info


# ----------------------------------------------------------------------------- constrained interpolation


def _cubic(t: float) -> np.ndarray:
    """Bicubic weights of the taps at -1, 0, 1, 2 for a sample at ``t`` in [0, 1)."""
    a = _CUBIC_A

    def w(x):
        x = abs(x)
        return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1 if x <= 1 else a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a

    return np.array([w(t + 1), w(t), w(1 - t), w(2 - t)], np.float32)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[y, x] = a[y + dy, x + dx]``, 0 outside."""
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)] = \
        a[max(dy, 0):h - max(-dy, 0), max(dx, 0):w - max(-dx, 0)]
    return out


def _reach(ch: np.ndarray, cv: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """On the padded grid: ``R[(dy, dx)][y, x]``, |dy|, |dx| <= 2, the largest product of
    (1 - cut) over the monotone paths from (y, x) to (y + dy, x + dx)."""
    h, w = ch.shape[0], cv.shape[1]
    ph = np.ones((h + 2 * _PAD, w + 2 * _PAD), np.float32)  # ph[y, x]: pass (y, x) -> (y, x + 1)
    pv = np.ones_like(ph)  # pv[y, x]: pass (y, x) -> (y + 1, x); 1 between replicated border copies
    if w > 1:
        ph[_PAD:_PAD + h, _PAD:_PAD + w - 1] = 1 - ch
        ph[:_PAD, _PAD:_PAD + w - 1] = 1 - ch[0]
        ph[_PAD + h:, _PAD:_PAD + w - 1] = 1 - ch[-1]
    if h > 1:
        pv[_PAD:_PAD + h - 1, _PAD:_PAD + w] = 1 - cv
        pv[_PAD:_PAD + h - 1, :_PAD] = 1 - cv[:, :1]
        pv[_PAD:_PAD + h - 1, _PAD + w:] = 1 - cv[:, -1:]
    hp, wp = ph.shape
    step = {(0, 1): ph, (0, -1): _shift(ph, 0, -1), (1, 0): pv, (-1, 0): _shift(pv, -1, 0)}
    R = {(0, 0): np.ones((hp, wp), np.float32)}
    for sy in (-1, 1):
        for sx in (-1, 1):
            for i in range(3):
                for j in range(3):
                    if (i, j) == (0, 0) or (sy * i, sx * j) in R:
                        continue
                    best = None
                    if i:  # arrive vertically from (i - 1, j)
                        o = (sy * (i - 1), sx * j)
                        best = R[o] * _shift(step[(sy, 0)], *o)
                    if j:  # arrive horizontally from (i, j - 1)
                        o = (sy * i, sx * (j - 1))
                        v = R[o] * _shift(step[(0, sx)], *o)
                        best = v if best is None else np.maximum(best, v)
                    R[(sy * i, sx * j)] = best
    return R


def _phase(s: int, p: int) -> tuple[int, float]:
    """Output phase ``p`` of scale ``s``: (offset of the cell's first source pixel, fraction t)."""
    u = (p + 0.5) / s - 0.5
    o = int(np.floor(u))
    return o, float(u - o)


def _blend(ests: np.ndarray, costs: np.ndarray, ref: np.ndarray, sharpness: float | np.ndarray) -> np.ndarray:
    """The output from the anchors' estimates ``ests`` (4, N, 3): the one closest to the plain
    bicubic value ``ref`` (``e1``), moved towards the one most unlike it (``e2``, the far side of
    the edge) by ``ref``'s coverage between them, made ``sharpness`` times steeper around 1/2."""
    i1 = np.argmin(costs, axis=0)[None, :, None]
    e1 = np.take_along_axis(ests, i1, axis=0)[0]
    i2 = np.argmax(np.abs(ests - e1).sum(axis=2), axis=0)[None, :, None]
    d = np.take_along_axis(ests, i2, axis=0)[0] - e1
    dd = (d * d).sum(axis=1)
    cover = ((ref - e1) * d).sum(axis=1) / np.maximum(dd, 1e-6)
    alpha = np.where(dd > 1.0, np.clip(0.5 + sharpness * (cover - 0.5), 0.0, 1.0), 0.0)
    return e1 + alpha[:, None] * d


def constrained_upscale(image: np.ndarray, ch: np.ndarray, cv: np.ndarray, s: int,
                        sharpness: float | np.ndarray | None = None) -> np.ndarray:
    """``image`` ((H, W, 3) uint8) enlarged ``s`` times, bicubic taps cut by ``ch`` / ``cv`` (see the
    module doc); float32, not clamped.  Pixels with no cut within 2 px are plain bicubic.
    ``sharpness`` (see :func:`_blend`): a number or an (H, W) map; default ``s``, with which a
    step's transition spans one output pixel; 1 keeps bicubic's own transition."""
    h, w = image.shape[:2]
    cv2 = cv2_module()
    sharp = np.pad(np.broadcast_to(np.asarray(s if sharpness is None else sharpness, np.float32), (h, w)), _PAD,
                   mode="edge").ravel()
    P = _PAD
    wp = w + 2 * P
    v = np.pad(image.astype(np.float32), ((P, P), (P, P), (0, 0)), mode="edge")
    flat_v = v.reshape(-1, 3)
    R = {k: r.ravel() for k, r in _reach(ch, cv).items()}
    touched = np.zeros((h, w), np.float32)
    touched[:, :-1] = np.maximum(touched[:, :-1], ch)
    touched[:, 1:] = np.maximum(touched[:, 1:], ch)
    touched[:-1] = np.maximum(touched[:-1], cv)
    touched[1:] = np.maximum(touched[1:], cv)
    active = cv2.dilate((touched > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # the 4x4 taps' reach
    ys, xs = np.nonzero(active)
    base = (ys + P) * wp + (xs + P)
    out = np.empty((h, s, w, s, 3), np.float32)
    for py in range(s):
        oy, ty = _phase(s, py)
        wy = _cubic(ty)
        for px in range(s):
            ox, tx = _phase(s, px)
            wx = _cubic(tx)
            ref = sum(wy[j] * wx[i] * v[P + oy - 1 + j:P + oy - 1 + j + h, P + ox - 1 + i:P + ox - 1 + i + w]
                      for j in range(4) for i in range(4))
            out[:, py, :, px] = ref
            if not len(base):
                continue
            at = base + oy * wp + ox  # the cell's first source pixel, flat in the padded grid
            taps = {(j, i): flat_v[at + (j - 1) * wp + (i - 1)] for j in range(4) for i in range(4)}
            r0 = ref[ys, xs]
            near = (int(ty >= 0.5), int(tx >= 0.5))
            ests, costs = [], []
            for ay in (0, 1):
                for ax in (0, 1):
                    num = np.zeros((len(base), 3), np.float32)
                    den = np.zeros(len(base), np.float32)
                    anchor_at = at + ay * wp + ax
                    for (j, i), t in taps.items():
                        k = R[(j - 1 - ay, i - 1 - ax)][anchor_at] * (wy[j] * wx[i])
                        den += k
                        num += k[:, None] * t
                    est = np.where((den > 0.3)[:, None], num / np.maximum(den, 0.3)[:, None], taps[(1 + ay, 1 + ax)])
                    ests.append(est)
                    costs.append(np.abs(est - r0).sum(axis=1) + 1e-3 * (abs(ay - near[0]) + abs(ax - near[1])))
            k = sharp[at + near[0] * wp + near[1]]  # at the source pixel nearest the output pixel
            out[ys, py, xs, px] = _blend(np.stack(ests), np.stack(costs), r0, k)
    return out.reshape(h * s, w * s, 3)


# ----------------------------------------------------------------------------- the backend


@register("upscale", "edge_aware")
class EdgeAware(BackendBase):
    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)
        edges: str = spec("canny", choices=EDGE_MAPS)
        low: float = spec(0.0, 0.0, 4080.0)  # gradient thresholds (Sobel units, 4 x a step); 0: automatic
        high: float = spec(0.0, 0.0, 4080.0)
        segment_scale: float = spec(100.0, 1.0, 10000.0)  # felzenszwalb's scale: larger, bigger segments
        min_size: int = spec(16, 1, 10000)  # felzenszwalb's smallest segment (px)
        clamp: bool = True

    def __init__(self, params) -> None:
        super().__init__(params)
        if params.low and params.high and params.low > params.high:
            raise ConfigError(f"upscale backend 'edge_aware': low={params.low:g} is above high={params.high:g}")

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        cv2 = cv2_module()
        p = self.params
        h, w = image.shape[:2]
        s = p.scale
        ch, cv, info = guidance_cuts(image, p.edges, p.low, p.high, p.segment_scale, p.min_size)
        sharp = 1.0 + (s - 1.0) * edge_coherence(image)
        out = np.clip(np.rint(constrained_upscale(image, ch, cv, s, sharp)), 0, 255).astype(np.uint8)
        if p.clamp:
            k = np.ones((3, 3), np.uint8)
            size = (w * s, h * s)
            lo = cv2.resize(cv2.erode(image, k, borderType=cv2.BORDER_REPLICATE), size, interpolation=cv2.INTER_NEAREST)
            hi = cv2.resize(cv2.dilate(image, k, borderType=cv2.BORDER_REPLICATE), size,
                            interpolation=cv2.INTER_NEAREST)
            out = np.clip(out, lo, hi)
        n = ch.size + cv.size
        density = float(ch.sum() + cv.sum()) / n if n else 0.0
        return StageResult(image=out, info={"edges": p.edges, "edge_density": round(density, 6), **info})
