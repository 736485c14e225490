"""Test vectors for the comparison engine: real photographs and synthetic images
with injected regressions (each must fail) and benign changes (none may fail).

Shared by tests/test_compare.py and tests/test_cli_compare.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage

PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "brick", "grass", "gravel", "rocket")


@lru_cache(maxsize=None)
def photo(name: str, size: int = 256) -> np.ndarray:
    """A real photograph from skimage.data, centre-cropped to ``size`` and made RGB uint8."""
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    h, w = img.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2
    out = np.ascontiguousarray(img[y0:y0 + size, x0:x0 + size])
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def synthetic(name: str, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if name == "gradient":
        base = np.stack([60 + 120 * xx / size, 80 + 100 * yy / size, 140 - 60 * xx / size], axis=2)
    elif name == "texture":
        n = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 1.2)
        base = 128 + 40 * n[..., None] / n.std() * np.array([1.0, 0.8, 0.6])
    else:
        raise KeyError(name)
    out = np.clip(np.rint(base), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def image(name: str, size: int = 256) -> np.ndarray:
    return photo(name, size) if name in PHOTOS else synthetic(name, size)


def _q(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def busiest_patch(img: np.ndarray, frac: float) -> tuple[slice, slice]:
    """The square patch covering ``frac`` of the image with the most fine texture."""
    h, w = img.shape[:2]
    side = int(round(np.sqrt(frac * h * w)))
    y = img.astype(np.float64).mean(axis=2)
    hp = (y - ndimage.gaussian_filter(y, 1.5)) ** 2
    score = ndimage.uniform_filter(hp, side)[side // 2: h - side // 2, side // 2: w - side // 2]
    r, c = np.unravel_index(np.argmax(score), score.shape)
    return slice(r, r + side), slice(c, c + side)


def default_mask(img: np.ndarray) -> np.ndarray:
    """An elliptical soft mask of ~5 % of the image, off centre (like an inpainted object)."""
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((yy - 0.45 * h) / (0.13 * h)) ** 2 + ((xx - 0.55 * w) / (0.12 * w)) ** 2
    return np.clip((1.15 - d) / 0.3, 0.0, 1.0).astype(np.float32)


def fill(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A plausible smooth fill (what a diffusion inpainter does to a flat region)."""
    x = img.astype(np.float64)
    m = (mask >= 0.5)[..., None]
    blurred = np.stack([ndimage.gaussian_filter(x[..., c], 6) for c in range(3)], axis=2)
    return _q(np.where(m, blurred, x))


# --- regressions -----------------------------------------------------------

def texture_loss(img, frac=0.03):
    ys, xs = busiest_patch(img, frac)
    out = img.astype(np.float64).copy()
    for c in range(3):
        out[ys, xs, c] = ndimage.gaussian_filter(out[..., c], 2.0)[ys, xs]
    return _q(out)


def flattened_patch(img, frac=0.02):
    ys, xs = busiest_patch(img, frac)
    out = img.astype(np.float64).copy()
    out[ys, xs] = out[ys, xs].mean(axis=(0, 1))
    return _q(out)


def hue_drift(img, degrees=4.0):
    from harness.run.power import rotate_hue

    return rotate_hue(img, degrees)


def over_denoise(img):
    from skimage.restoration import denoise_tv_chambolle

    return _q(denoise_tv_chambolle(img.astype(np.float64) / 255.0, weight=0.06, channel_axis=2) * 255.0)


def noise_amplification(img, sigma=3.0):
    rng = np.random.default_rng(11)
    return _q(img.astype(np.float64) + rng.normal(0, sigma, img.shape))


def micro_tiling(img, amplitude=2.0, period=8):
    rng = np.random.default_rng(5)
    h, w = img.shape[:2]
    tile = rng.uniform(-1, 1, (period, period))
    pattern = np.tile(tile, (h // period + 1, w // period + 1))[:h, :w]
    return _q(img.astype(np.float64) + amplitude * pattern[..., None])


def washed_out_patch(img, frac=0.03, amount=0.4):
    ys, xs = busiest_patch(img, frac)
    out = img.astype(np.float64).copy()
    out[ys, xs] = (1 - amount) * out[ys, xs] + amount * 200.0
    return _q(out)


def seam(img, mask, level=10.0, width=2):
    """A bright line along the mask border (the fill's edge did not blend)."""
    m = mask >= 0.5
    border = m & ~ndimage.binary_erosion(m, iterations=width)
    out = img.astype(np.float64).copy()
    out[border] += level
    return _q(out)


def over_dilated_fill(img, mask, extra=10):
    """The fill spills ``extra`` px beyond the mask and swallows the texture there."""
    big = ndimage.binary_dilation(mask >= 0.5, iterations=extra).astype(np.float32)
    return fill(img, big)


# --- benign ----------------------------------------------------------------

def jitter(img, seed=0):
    rng = np.random.default_rng(seed)
    return _q(img.astype(np.int16) + rng.integers(-1, 2, img.shape))


def offset(img, amount=1):
    return _q(img.astype(np.int16) + amount)


REGRESSIONS = {
    "texture_loss": texture_loss,
    "flattened_patch": flattened_patch,
    "hue_drift": hue_drift,
    "over_denoise": over_denoise,
    "noise_amplification": noise_amplification,
    "micro_tiling": micro_tiling,
    "washed_out_patch": washed_out_patch,
}
MASKED_REGRESSIONS = {"seam": seam, "over_dilated_fill": over_dilated_fill}
BENIGN = {"jitter": jitter, "jitter_again": lambda img: jitter(img, seed=1), "offset": offset,
          "offset_down": lambda img: offset(img, -1)}
