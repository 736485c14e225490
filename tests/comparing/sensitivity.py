"""Sensitivity on held-out photographs: the smallest added noise and micro-tiling caught, and benign changes.

The strongest perceptual difference tools (NVIDIA FLIP, SSIMULACRA2, each at its best
threshold; SSIM too) catch Gaussian noise of sigma = 2 LSB added per channel and an 8-px
micro-tiling pattern of +-1 LSB.  This module builds the same perturbations on photographs
that neither the tolerance model's tuning nor ``real_tools`` uses (:data:`HELD_OUT`: centre
crops of ``skimage.data`` images, 256² so the matrix stays fast) and compares each with its
original through :func:`harness.comparing.engine.compare`:

* ``noise(sigma)``: ``round(img + N(0, sigma²))`` per R, G, B channel, clipped;
* ``luma_noise(sigma)``: one draw ``N(0, sigma²)`` per pixel added to R, G and B alike (grain,
  sensor-noise models), rounded and clipped;
* ``tiling(amplitude)``: one fixed random 8x8 cell ``U(-1, 1) * amplitude`` added to R, G and B
  alike, repeated over the image (``tests/cases.py``'s ``micro_tiling``), rounded;
* benign (:data:`BENIGN`): fresh +-1 LSB jitter (every code value moves by one), jitter in
  {-1, 0, 1}, two fresh jitters against each other, +-1 LSB offsets, the same Gaussian filter in
  float32 and float64, PNG written by Pillow and by OpenCV.

``python tests/comparing/sensitivity.py`` prints, per image, the smallest sigma (per channel and
luma-only) and amplitude caught and the worst benign check (severity = |delta| / tolerance).
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import ndimage

HELD_OUT = ("stereo_motorcycle", "immunohistochemistry", "retina", "hubble_deep_field", "moon", "clock",
            "coins")
SIZE = 256
SIGMAS = (1.0, 1.5, 2.0, 2.5, 3.0)
AMPLITUDES = (0.75, 1.0, 1.5, 2.0)


def _q(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@lru_cache(maxsize=None)
def image(name: str, size: int = SIZE) -> np.ndarray:
    """A centre crop (``size``²) of a ``skimage.data`` photograph as RGB uint8 (grey ones repeated); read-only."""
    from skimage import data

    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo pairs: the left view
        img = img[0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    y0, x0 = max(h - size, 0) // 2, max(w - size, 0) // 2
    out = np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])
    out.setflags(write=False)
    return out


def noise(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    return _q(img.astype(np.float64) + np.random.default_rng(seed).normal(0.0, sigma, img.shape))


def luma_noise(img: np.ndarray, sigma: float, seed: int = 7) -> np.ndarray:
    h, w = img.shape[:2]
    return _q(img.astype(np.float64) + np.random.default_rng(seed).normal(0.0, sigma, (h, w, 1)))


def tiling(img: np.ndarray, amplitude: float, seed: int = 5, period: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    cell = rng.uniform(-1.0, 1.0, (period, period))
    pattern = np.tile(cell, (h // period + 1, w // period + 1))[:h, :w]
    return _q(img.astype(np.float64) + amplitude * pattern[..., None])


def _jitter(img: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _q(img.astype(np.int16) + (2 * rng.integers(0, 2, img.shape) - 1))


def _jitter3(img: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _q(img.astype(np.int16) + rng.integers(-1, 2, img.shape))


def _filtered(img: np.ndarray, dtype) -> np.ndarray:
    return _q(ndimage.gaussian_filter(img.astype(dtype), (1.0, 1.0, 0)))


def _png_pair(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    a = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    ok, enc = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return a, cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1].copy()


BENIGN: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "jitter": lambda im: (im, _jitter(im, 1)),
    "jitter {-1,0,1}": lambda im: (im, _jitter3(im, 1)),
    "jitter vs jitter": lambda im: (_jitter(im, 2), _jitter(im, 3)),
    "offset +1": lambda im: (im, _q(im.astype(np.int16) + 1)),
    "offset -1": lambda im: (im, _q(im.astype(np.int16) - 1)),
    "float32 vs float64": lambda im: (_filtered(im, np.float64), _filtered(im, np.float32)),
    "png pillow vs cv2": _png_pair,
}


@lru_cache(maxsize=None)
def _measured(name: str):
    from harness.measuring.driver import measure

    return measure(image(name))


def worst(name: str, candidate: np.ndarray, baseline: np.ndarray | None = None):
    """The worst check (highest severity) of ``candidate`` against ``baseline`` (default: the image)."""
    from harness.comparing.engine import compare_paired
    from harness.measuring.driver import measure

    mb = _measured(name) if baseline is None else measure(baseline)
    return max(compare_paired(mb, measure(candidate)), key=lambda c: c.severity)


def smallest_caught(name: str, make: Callable[[np.ndarray, float], np.ndarray], levels) -> float | None:
    """The smallest level whose perturbation fails the comparison (None: none of ``levels``)."""
    img = image(name)
    for level in levels:
        if worst(name, make(img, level)).status == "fail":
            return level
    return None


def worst_benign(name: str):
    """``(severity, kind, metric, slice)`` of the worst check over every benign pair of an image."""
    img = image(name)
    out = []
    for kind, fn in BENIGN.items():
        a, b = fn(img)
        c = worst(name, b, a)
        out.append((c.severity, kind, c.metric, c.slice, c.status))
    return max(out)


def table() -> list[tuple[str, float | None, float | None, float | None, tuple]]:
    """Per image: smallest sigma caught (per channel, luma-only), smallest tiling amplitude, worst benign."""
    return [(n, smallest_caught(n, noise, SIGMAS), smallest_caught(n, luma_noise, SIGMAS),
             smallest_caught(n, tiling, AMPLITUDES), worst_benign(n)) for n in HELD_OUT]


def rates(name: str, draws: int, size: int = SIZE) -> dict[str, tuple[int, float]]:
    """Over ``draws`` fresh draws each: ``{case: (failed, worst or least severity)}`` for sigma 2 noise,
    +-1 tiling (least severity: how close a miss came) and fresh jitter (worst severity)."""
    from harness.comparing.engine import compare_paired
    from harness.measuring.driver import measure

    img = image(name, size)
    mb = measure(img)
    out = {}
    cases = (("noise 2", lambda s: noise(img, 2.0, s), min), ("tiling 1", lambda s: tiling(img, 1.0, s), min),
             ("jitter", lambda s: _jitter(img, s), max))
    for case, make, pick in cases:
        w = [max(compare_paired(mb, measure(make(100 + i))), key=lambda c: c.severity) for i in range(draws)]
        out[case] = (sum(c.status == "fail" for c in w), pick(c.severity for c in w))
    return out


if __name__ == "__main__":
    import sys

    print(f"{'image':22s} {'noise sigma':>11s} {'luma sigma':>10s} {'tiling +-':>9s}  worst benign (x tolerance)")
    for name, s, ls, a, b in table():
        print(f"{name:22s} {s!s:>11s} {ls!s:>10s} {a!s:>9s}  {b[0]:.2f} {b[1]} ({b[2]} {b[3]}, {b[4]})")
    if len(sys.argv) > 1:  # python tests/comparing/sensitivity.py DRAWS: failure counts over fresh draws
        n = int(sys.argv[1])
        for size in (SIZE, 2 * SIZE):
            for name in HELD_OUT:
                r = rates(name, n, size)
                cells = "  ".join(f"{k}: {f}/{n} fail (sev {v:.2f})" for k, (f, v) in r.items())
                print(f"{size}² {name:22s} {cells}")
