"""Test vectors made with real tools: lossy codecs, real denoisers, resamplers, enhancers, inpainters.

Each pair is ``(baseline, candidate, mask)`` of ``(H, W, 3)`` uint8 images (``mask`` is None or
the ``(H, W)`` float mask both sides are measured with).  The ground truth of a pair is
:func:`max_window_rms_change`, the largest RMS difference (code values, over R, G and B) of any
32 x 32 window:

* ``>= VISIBLE`` (3 LSB): a visible change somewhere at 1:1 -- the comparison must fail;
* ``<= INVISIBLE`` (1.6 LSB): at the level of two renders with fresh +-1 LSB jitter (about 1.4
  LSB RMS) -- the comparison must pass;
* in between: no requirement.

Images (:data:`IMAGES`): eight ``skimage.data`` photographs centre-cropped to 256², a
security card (pastel guilloche with microprint, ``harness.suite.vectors.recipes``), and
512² crops of two photographs.  They are split in two halves (:data:`TUNE`, :data:`HELD_OUT`):
the constants of the tolerance model were chosen looking at ``TUNE`` only; ``HELD_OUT`` is
the check that they carry over.

Regressions (:data:`REGRESSIONS`) and benign changes (:data:`BENIGN`) map a kind to its
strengths; :func:`pairs` builds every pair of an image (cached for the session).
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy import ndimage

VISIBLE = 3.0
INVISIBLE = 1.6

TUNE = ("astronaut-256", "brick-256", "coffee-256", "gravel-256", "card-256", "grass-512")
HELD_OUT = ("camera-256", "grass-256", "chelsea-256", "rocket-256", "brick-512")
IMAGES = TUNE + HELD_OUT


# --- ground truth ----------------------------------------------------------------------------

def max_window_rms_change(a: np.ndarray, b: np.ndarray, win: int = 32) -> float:
    """Largest RMS difference (code values, over all channels) of any ``win x win`` window.

    Windows slide by one pixel and lie wholly inside the image (the whole image if it is
    smaller).  Two renders with fresh +-1 LSB noise differ by about 1.4 here.
    """
    d = a.astype(np.float64) - b.astype(np.float64)
    sq = (d * d).mean(axis=2) if d.ndim == 3 else d * d
    h, w = sq.shape
    wy, wx = min(win, h), min(win, w)
    c = np.zeros((h + 1, w + 1))
    c[1:, 1:] = sq.cumsum(axis=0).cumsum(axis=1)
    s = c[wy:, wx:] - c[:-wy, wx:] - c[wy:, :-wx] + c[:-wy, :-wx]
    return float(np.sqrt(max(s.max(), 0.0) / (wy * wx)))


# --- images ------------------------------------------------------------------------------------

def _q(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _card(size: int) -> np.ndarray:
    """The security-card recipe with a line of microprint (what an over-eager fill erases)."""
    from PIL import Image, ImageDraw

    from harness.suite.vectors.recipes import RECIPES, font

    img = RECIPES["security_card"].fn((size, size), 4, period=3.1, lobes=7)
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    f = font(6)
    for i, y in enumerate(range(size // 8, size, size // 5)):
        d.text((4 + 3 * i, y), "GENUINE SECURE " * (size // 60), fill=(70, 50, 90), font=f)
    return np.asarray(im)


@lru_cache(maxsize=None)
def image(key: str) -> np.ndarray:
    """``name-size[-tl|-br]``: a centre (or corner) crop of a ``skimage.data`` photo, or the card; RGB uint8.

    Read-only.  Photos smaller than ``size`` are not padded: the crop is what there is.
    """
    name, size, *corner = key.split("-")
    n = int(size)
    if name == "card":
        out = _card(n)
    else:
        from skimage import data

        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = img[..., :3]
        h, w = img.shape[:2]
        y0, x0 = {"tl": (0, 0), "br": (max(h - n, 0), max(w - n, 0))}.get(corner[0] if corner else "",
                                                                           (max(h - n, 0) // 2, max(w - n, 0) // 2))
        out = img[y0:y0 + n, x0:x0 + n]
    out = np.ascontiguousarray(out)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def text_mask(key: str) -> np.ndarray:
    """The ground-truth mask of a text overlay (``VOID 2031``) to be removed, float32 in {0, 1}."""
    from PIL import Image, ImageDraw

    from harness.suite.vectors.recipes import font

    h, w = image(key).shape[:2]
    im = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(im)
    d.text((int(0.15 * w), int(0.4 * h)), "VOID 2031", fill=255, font=font(max(12, h // 9)))
    m = (np.asarray(im) >= 128).astype(np.float32)
    m.setflags(write=False)
    return m


# --- tools -------------------------------------------------------------------------------------

def _pil(img):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(img))


def jpeg(img, q):
    buf = io.BytesIO()
    _pil(img).save(buf, "JPEG", quality=int(q))
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def webp(img, q):
    buf = io.BytesIO()
    _pil(img).save(buf, "WEBP", quality=int(q), method=4)
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def nlm(img, h):
    import cv2

    bgr = np.ascontiguousarray(img[..., ::-1])
    return cv2.fastNlMeansDenoisingColored(bgr, None, float(h), float(h), 7, 21)[..., ::-1].copy()


def bilateral(img, sigma_color):
    import cv2

    bgr = np.ascontiguousarray(img[..., ::-1])
    return cv2.bilateralFilter(bgr, 5, float(sigma_color), 3.0)[..., ::-1].copy()


def gaussian_blur(img, sigma):
    import cv2

    return cv2.GaussianBlur(np.ascontiguousarray(img), (0, 0), float(sigma))


def resample(img, factor, method):
    from PIL import Image

    resample = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC}[method]
    h, w = img.shape[:2]
    small = _pil(img).resize((max(1, round(w * factor)), max(1, round(h * factor))), resample)
    return np.asarray(small.resize((w, h), resample))


def unsharp(img, amount, sigma=1.0):
    x = img.astype(np.float64)
    blur = ndimage.gaussian_filter(x, (sigma, sigma, 0))
    return _q(x + amount * (x - blur))


def saturation(img, factor):
    from PIL import ImageEnhance

    return np.asarray(ImageEnhance.Color(_pil(img)).enhance(factor))


def contrast(img, factor):
    from PIL import ImageEnhance

    return np.asarray(ImageEnhance.Contrast(_pil(img)).enhance(factor))


def inpaint(img, mask, dilate, method):
    import cv2

    m = ndimage.binary_dilation(mask >= 0.5, iterations=dilate).astype(np.uint8) * 255
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    bgr = np.ascontiguousarray(img[..., ::-1])
    return cv2.inpaint(bgr, m, 3, flag)[..., ::-1].copy()


def jitter(img, seed):
    """Fresh +-1 LSB noise: every code value moves up or down by one (clipped)."""
    rng = np.random.default_rng(seed)
    return _q(img.astype(np.int16) + (2 * rng.integers(0, 2, img.shape) - 1))


def offset(img, amount=1):
    return _q(img.astype(np.int16) + amount)


def filtered(img, dtype):
    """The same Gaussian filter run in ``dtype``: float32 and float64 round a few pixels differently."""
    x = img.astype(dtype)
    return _q(ndimage.gaussian_filter(x, (1.0, 1.0, 0)))


def png_pillow(img):
    from PIL import Image

    buf = io.BytesIO()
    _pil(img).save(buf, "PNG")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def png_cv2(img):
    import cv2

    ok, enc = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    assert ok
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1].copy()


# --- pairs -------------------------------------------------------------------------------------

Pair = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]


def _inpaint_pair(key: str, method: str) -> Pair:
    """Text removed with a mask dilated by 2 px (baseline) or 8 px (candidate); measured with the text's mask."""
    img = image(key)
    m = text_mask(key)
    overlay = img.copy()
    overlay[m >= 0.5] = (30, 30, 120)
    return inpaint(overlay, m, 2, method), inpaint(overlay, m, 8, method), m


def _plain(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[str], Pair]:
    return lambda key: (image(key), fn(image(key)), None)


REGRESSIONS: dict[str, dict[str, Callable[[str], Pair]]] = {
    "jpeg": {f"q{q}": _plain(lambda im, q=q: jpeg(im, q)) for q in (95, 90, 80, 70, 50)},
    "webp": {f"q{q}": _plain(lambda im, q=q: webp(im, q)) for q in (90, 80, 70)},
    "nlm": {f"h{h}": _plain(lambda im, h=h: nlm(im, h)) for h in (3, 5, 8)},
    "bilateral": {f"sc{s}": _plain(lambda im, s=s: bilateral(im, s)) for s in (10, 25)},
    "blur": {f"s{s}": _plain(lambda im, s=s: gaussian_blur(im, s)) for s in (0.5, 0.8)},
    "resample": {f"{m}x{f}": _plain(lambda im, f=f, m=m: resample(im, f, m))
                 for f in (0.75, 0.5) for m in ("lanczos", "bicubic")},
    "unsharp": {f"a{a}": _plain(lambda im, a=a: unsharp(im, a)) for a in (0.3, 0.6)},
    "saturation": {f"x{f}": _plain(lambda im, f=f: saturation(im, f)) for f in (0.9, 1.1)},
    "contrast": {f"x{f}": _plain(lambda im, f=f: contrast(im, f)) for f in (0.95, 0.9)},
    "inpaint": {m: (lambda key, m=m: _inpaint_pair(key, m)) for m in ("telea", "ns")},
}

BENIGN: dict[str, dict[str, Callable[[str], Pair]]] = {
    "jitter": {"fresh": _plain(lambda im: jitter(im, 1))},
    "offset": {"+1": _plain(lambda im: offset(im, 1))},
    "f32_vs_f64": {"gauss1": lambda key: (filtered(image(key), np.float64), filtered(image(key), np.float32), None)},
    "png": {"pillow_vs_cv2": lambda key: (png_pillow(image(key)), png_cv2(image(key)), None)},
    "jitter_vs_jitter": {"fresh": lambda key: (jitter(image(key), 2), jitter(image(key), 3), None)},
    "jitter_masked": {"text": lambda key: (image(key), jitter(image(key), 4), text_mask(key))},
}


@lru_cache(maxsize=None)
def pair(key: str, group: str, kind: str, strength: str) -> Pair:
    table = REGRESSIONS if group == "regression" else BENIGN
    base, cand, mask = table[kind][strength](key)
    for a in (base, cand):
        a.setflags(write=False)
    return base, cand, mask


def all_pairs(keys=IMAGES):
    """``(key, group, kind, strength)`` of every pair, regressions first."""
    out = []
    for key in keys:
        for group, table in (("regression", REGRESSIONS), ("benign", BENIGN)):
            for kind, strengths in table.items():
                for strength in strengths:
                    out.append((key, group, kind, strength))
    return out


@lru_cache(maxsize=None)
def severity(key: str, group: str, kind: str, strength: str) -> float:
    base, cand, _ = pair(key, group, kind, strength)
    return max_window_rms_change(base, cand)
