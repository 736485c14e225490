"""Reading and writing images and masks, with clear errors and atomic writes.

Images are returned as ``(H, W, 3)`` arrays in their stored integer type
(``uint8`` or ``uint16``) so that the quantisation step (one LSB) is known to the
metrics.  Masks are returned as ``(H, W)`` float32 in [0, 1]; soft values are kept.

Reading is careful in four ways:

* **bit depth**: 16-bit RGB/RGBA PNG and TIFF (which Pillow would silently cut to
  8 bits) are decoded with OpenCV, imported only for such files; 16-bit
  greyscale is read by Pillow as it is;
* **orientation**: an EXIF Orientation tag is applied, so an image compares as
  it displays (``PIL.ImageOps.exif_transpose``, or the same transposition in
  numpy for OpenCV-decoded files);
* **links**: a dangling or looping symbolic link is reported as a broken link;
* **size**: an image whose header declares more pixels than a limit is refused
  before it is decoded (see :func:`resolve_max_pixels`), and Pillow's own
  decompression-bomb guard gives the same message.
"""

from __future__ import annotations

import errno
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

from typing import Any, Iterator

import numpy as np

from harness.fsio import atomic_write_bytes
from harness.errors import ConfigError, InputError

__all__ = ["load_image", "load_mask", "save_png", "encode_png", "to_float", "float_to_uint8", "codes_to_uint8",
           "resolve_max_pixels", "parse_max_pixels", "orient", "link_problem", "DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV"]

MIN_SIDE = 16

# Pixels one image may declare before it is refused undecoded.  Measured peak RSS of
# `harness compare A B` for one RGB pair (load + measure + PSNR/SSIM + checks) of an image
# over 2048x2048 (measured on the low-memory path, harness.measuring.sizecache): about 0.22 GB
# for the interpreter plus 55 bytes per pixel of one image -- 0.72 GB at 3000x3000, 2.13 GB at
# 6000x6000 (4.9 float32 RGB copies; it was 9-10 GB before the streamed path).  4096x4096 keeps
# one pair near 1.2 GB and admits 4K UHD and 12 MP photos; `harness.measuring.memory` re-measures it.
DEFAULT_MAX_PIXELS = 4096 * 4096
MAX_PIXELS_ENV = "HARNESS_MAX_PIXELS"
BYTES_PER_PIXEL_PAIR = 60  # measured, see above (rounded up); used only to tell the user what a size costs

_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def parse_max_pixels(text: str | int, what: str = "--max-pixels") -> int | None:
    """``"16777216"``, ``"4096x4096"`` or ``"0"`` (no limit) → pixel count, or ``None`` for no limit."""
    s = str(text).strip().lower().replace("_", "")
    try:
        if "x" in s:
            w, h = s.split("x")
            n = int(w) * int(h)
            if int(w) < 0 or int(h) < 0:
                raise ValueError
        else:
            n = int(s)
    except ValueError:
        raise ConfigError(f"{what}: expected a pixel count (e.g. 16777216 or 4096x4096; 0 for no limit), "
                          f"got {str(text)!r}") from None
    if n < 0:
        raise ConfigError(f"{what}: expected a pixel count >= 0 (0 for no limit), got {str(text)!r}")
    return n or None


def resolve_max_pixels(value: str | int | None = None) -> int | None:
    """The pixel limit in force: ``value`` if given, else ``$HARNESS_MAX_PIXELS``, else the default.

    ``None`` (returned) means no limit; ``0`` given or in the environment asks for that.
    """
    if value is not None:
        return parse_max_pixels(value)
    env = os.environ.get(MAX_PIXELS_ENV)
    if env is not None and env.strip():
        return parse_max_pixels(env, MAX_PIXELS_ENV)
    return DEFAULT_MAX_PIXELS


def link_problem(path: str | os.PathLike[str]) -> str | None:
    """``"broken link: ..."`` when ``path`` is a symbolic link that leads nowhere (dangling or looping)."""
    p = Path(path)
    if not p.is_symlink():
        return None
    try:
        os.stat(p)
        return None
    except OSError as exc:
        try:
            target = os.readlink(p)
        except OSError:
            target = "?"
        if exc.errno == errno.ELOOP:
            return f"broken link: {p} -> {target} is a symbolic link loop"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return f"broken link: {p} -> {target} does not exist"
        return f"broken link: {p} -> {target} ({exc.strerror or exc})"


def _too_large(p: Path, size: tuple[int, int] | None, limit: int) -> str:
    if size is None:
        what = "declares more pixels than"
    else:
        w, h = size
        gb = w * h * BYTES_PER_PIXEL_PAIR / 1e9
        what = (f"is {w}x{h} ({w * h / 1e6:.1f} megapixels; comparing a pair this size needs about "
                f"{gb:.1f} GB of memory), over")
    return (f"{p}: image {what} the limit of {limit} pixels ({limit / 1e6:.1f} megapixels); not decoded. "
            f"Raise the limit with --max-pixels N or {MAX_PIXELS_ENV}=N (0: no limit)")


@contextmanager
def _pillow_limit(limit: int | None) -> Iterator[None]:
    """Pillow's decompression-bomb guard at ``limit`` (``None``: off), its warning raised as an error."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _header_size(p: Path) -> tuple[int, int] | None:
    """The size an image's header declares, read without decoding and without Pillow's guard."""
    from PIL import Image

    try:
        with _pillow_limit(None), Image.open(p) as img:
            return img.size
    except Exception:  # only for the message: never mask the real refusal
        return None


def _deep_colour(p: Path, img) -> bool:
    """True for a 16-bit colour PNG/TIFF, which Pillow would read as 8-bit RGB."""
    if img.mode not in ("RGB", "RGBA", "LA"):
        return False
    if img.format == "PNG":
        with open(p, "rb") as f:
            head = f.read(26)
        # signature (8), chunk length (4), b"IHDR", width (4), height (4), bit depth, colour type
        return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 4, 6)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258)
        bits = bits if isinstance(bits, tuple) else (bits,)
        return any(isinstance(b, int) and b > 8 for b in bits)
    return False


def _orientation(img) -> int:
    """EXIF Orientation (1..8) without decoding pixel data; 1 when absent or unreadable."""
    from PIL import Image

    try:
        if img.format == "PNG":  # PngImageFile.getexif() would decode the whole image first
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = img.getexif()
        o = int(exif.get(0x0112, 1))
    except Exception:
        return 1
    return o if 1 <= o <= 8 else 1


def orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an ``(H, W[, C])`` array, as ``PIL.ImageOps.exif_transpose`` does."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(arr, -1)
    if orientation == 7:
        return arr[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(arr, 1)
    return arr


def _decode_deep(p: Path) -> np.ndarray:
    """A 16-bit colour file through OpenCV → ``(H, W, 3)`` RGB (alpha dropped), its stored dtype."""
    import cv2

    try:
        data = np.fromfile(p, np.uint8)
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror or exc})") from None
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise InputError(f"{p}: corrupt or truncated image ({str(exc).strip().splitlines()[-1]})") from None
    finally:
        cv2.utils.logging.setLogLevel(level)
    del data
    if arr is None:
        raise InputError(f"{p}: corrupt or truncated image (16-bit decoder could not read it)")
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] in (1, 2):  # grey (+ alpha)
        return np.repeat(arr[..., :1], 3, axis=2)
    return arr[..., 2::-1]  # BGR(A) → RGB


def _read(path: str | os.PathLike[str], limit: int | None, grey: bool) -> tuple[Path, np.ndarray]:
    """Open, check, decode and orient one file.

    Returns ``(H, W)`` for a greyscale file, or when ``grey`` (colour → luminance), else
    ``(H, W, 3)``; dtype uint8 or uint16 as stored.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    problem = link_problem(p)
    if problem is not None:
        raise InputError(problem)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected an image file")
    img = None
    try:
        try:
            with _pillow_limit(limit):
                img = Image.open(p)  # the header only
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(_too_large(p, _header_size(p), limit)) from None  # type: ignore[arg-type]
        w, h = img.size
        if limit is not None and w * h > limit:
            raise InputError(_too_large(p, (w, h), limit))
        if _deep_colour(p, img):
            orientation = _orientation(img)
            img.close()
            arr = orient(_decode_deep(p), orientation)
            if grey:
                lum = arr.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                arr = np.clip(np.rint(lum), 0, np.iinfo(arr.dtype).max).astype(arr.dtype)
            return p, np.ascontiguousarray(arr)
        try:
            with _pillow_limit(limit):
                img.load()  # force decoding now so truncation is caught here
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InputError(_too_large(p, img.size, limit)) from None  # type: ignore[arg-type]
        if _orientation(img) != 1:
            img = ImageOps.exif_transpose(img)
        mode = img.mode
        if mode in _INT_MODES:
            arr = np.asarray(img)
            if arr.dtype != np.uint16:
                if arr.size and (arr.min() < 0 or arr.max() > 65535):
                    raise InputError(f"{p}: 32-bit integer image out of 16-bit range")
                arr = arr.astype(np.uint16)
            if not grey:
                arr = np.repeat(arr[..., None], 3, axis=2)
        elif mode in ("RGB", "L", "RGBA", "LA", "P", "PA", "1", "CMYK", "YCbCr", "La", "RGBa"):
            arr = np.asarray(img.convert("L" if grey else "RGB"))
        else:
            raise InputError(f"{p}: unsupported image mode {mode!r}")
        return p, np.ascontiguousarray(arr)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{p}: not an image file (cannot identify format)") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{p}: corrupt or truncated image ({exc})") from None
    finally:
        if img is not None:
            img.close()


def load_image(path: str | os.PathLike[str], max_pixels: int | str | None = None) -> np.ndarray:
    """Load an image file as an ``(H, W, 3)`` uint8 or uint16 array, as it displays.

    Greyscale is replicated to three channels; an alpha channel is dropped;
    16-bit files (greyscale, RGB, RGBA) stay 16-bit; EXIF orientation is applied.
    ``max_pixels`` (default: :func:`resolve_max_pixels`, i.e. ``$HARNESS_MAX_PIXELS`` or
    :data:`DEFAULT_MAX_PIXELS`; 0 for none) refuses a larger image before decoding.
    Raises :class:`InputError` naming the file.
    """
    p, arr = _read(path, resolve_max_pixels(max_pixels), grey=False)
    if arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        raise InputError(f"{p}: image is {arr.shape[1]}x{arr.shape[0]}, smaller than the minimum {MIN_SIDE}x{MIN_SIDE}")
    return arr


def load_mask(path: str | os.PathLike[str], shape: tuple[int, int] | None = None,
              max_pixels: int | str | None = None) -> np.ndarray:
    """Load a single-channel mask as float32 in [0, 1] (soft values kept), as it displays.

    Colour masks are converted to luminance; 16-bit masks keep their precision; EXIF
    orientation is applied.  ``shape`` (H, W), when given, must match exactly.
    ``max_pixels`` as for :func:`load_image`.
    """
    p, arr = _read(path, resolve_max_pixels(max_pixels), grey=True)
    arr = arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0)
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(
            f"{p}: mask is {arr.shape[1]}x{arr.shape[0]} but the image is {shape[1]}x{shape[0]}"
        )
    return arr


def float_to_uint8(image: Any) -> np.ndarray:
    """Floats in [0, 1] → uint8 code values: ×255, round half to even (``np.rint``), clip to 0..255.

    The one float → 8-bit conversion in harness (stage outputs, saved masks, PNGs).  The
    multiplication keeps the input's float dtype, so float32 and float64 inputs round as
    their own arithmetic gives; NaN must be rejected before (it would become 0).
    """
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def codes_to_uint8(values: Any) -> np.ndarray:
    """Float code values (0..255 scale) → uint8: round half to even, clip to 0..255."""
    return np.clip(np.rint(np.asarray(values)), 0, 255).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """Convert a uint8/uint16/float image to float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return image.astype(np.float32, copy=False)


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Save an ``(H, W, 3)`` or ``(H, W)`` array as PNG, atomically.

    uint8 and uint16 are written as is; float input in [0, 1] is rounded to 8 bit.
    """
    atomic_write_bytes(path, encode_png(image, path))


def encode_png(image: np.ndarray, name: str | os.PathLike[str] = "image") -> bytes:
    """The PNG bytes :func:`save_png` writes for ``image`` (``name`` is what an error names)."""
    import io

    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name}: refusing to save an image with NaN or inf")
        arr = float_to_uint8(arr)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        if arr.ndim == 3:
            raise InputError(f"{name}: 16-bit RGB PNG writing is not supported; save uint8")
        img = Image.fromarray(arr, mode="I;16")
    else:
        img = Image.fromarray(arr.astype(np.uint8))
    buf = io.BytesIO()
    # zlib level 1: ~3x faster than the default 6 on stage images, files within a few per cent
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
