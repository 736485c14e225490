"""Frequency bands: where ``low, mid, high, top`` are defined and how an image is split into them.

Four octave bands on the radial frequency ``f`` (cycles per pixel), centred at
1/16, 1/8, 1/4 and 1/2 (Nyquist) and named ``low, mid, high, top``.  Each band
filter is a raised cosine in ``log2 f`` one octave wide on either side, so
neighbouring filters overlap and their *squares* sum to one: the bands form a
tight frame and band energies add up to the image energy (Parseval), while each
filter is smooth enough to stay spatially local (a sharp brick-wall band would
ring into neighbouring tiles and mask regions).  Frequencies above Nyquist on
the diagonal belong to ``top``; those below 1/16 that ``low`` does not cover
form the ``base`` (shading), which is not reported as a band -- mean colour and
contrast describe it.

Everything here lives on the ``rfft2`` grid of an ``h x w`` image: arrays of
shape ``(h, w//2 + 1)``, cached per image size and read-only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.measuring.sizecache import per_size

__all__ = [
    "BAND_NAMES",
    "BAND_CENTERS",
    "radial_frequency",
    "rfft_weights",
    "band_filters",
    "band_gains",
    "band_columns",
    "band_images",
    "iter_band_images",
]

BAND_NAMES: tuple[str, ...] = ("low", "mid", "high", "top")
BAND_CENTERS: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2)  # cycles per pixel


_BLOCK_ROWS = 256  # rows of the rfft2 grid per block where an image-sized array is built from float64 steps


@per_size(16)
def radial_frequency(h: int, w: int) -> np.ndarray:
    """Radial frequency (cycles/pixel, float64) on the ``rfft2`` grid, shape ``(h, w//2+1)``."""
    f = _radial_rows(h, w, 0, h)
    f.setflags(write=False)
    return f


def _radial_rows(h: int, w: int, r0: int, r1: int, cols: int | None = None) -> np.ndarray:
    """Rows ``r0:r1`` (and the first ``cols`` columns) of :func:`radial_frequency`: the same numbers."""
    fy = np.fft.fftfreq(h)[r0:r1, None]
    fx = np.fft.rfftfreq(w)[None, :cols]
    return np.sqrt(fy * fy + fx * fx)


@per_size(16)
def rfft_weights(h: int, w: int) -> np.ndarray:
    """Multiplicity (1 or 2) of each ``rfft2`` coefficient in the full spectrum, ``(h, w//2+1)`` float32.

    The half-plane ``rfft2`` stores each conjugate pair once; only the first
    column (and the Nyquist column for even ``w``) has no mirror image.
    """
    wt = np.full((h, w // 2 + 1), 2.0, dtype=np.float32)
    wt[:, 0] = 1.0
    if w % 2 == 0:
        wt[:, -1] = 1.0
    wt.setflags(write=False)
    return wt


def _band_response(f: np.ndarray, center: float, is_top: bool) -> np.ndarray:
    """Raised-cosine amplitude response of one band at radial frequencies ``f`` (float64)."""
    with np.errstate(divide="ignore"):
        t = np.log2(np.maximum(f, 1e-12)) - np.log2(center)
    resp = np.where(np.abs(t) < 1.0, np.cos(0.5 * np.pi * t), 0.0)
    if is_top:  # nothing lies above ``top``: it keeps all of the diagonal beyond Nyquist
        resp = np.where(t >= 0.0, 1.0, resp)
    return resp


@per_size(16)
def band_filters(h: int, w: int) -> np.ndarray:
    """Band amplitude responses on the ``rfft2`` grid: ``(n_bands, h, w//2+1)`` float32.

    Squares of the responses, plus the ``base`` residual, sum to one everywhere.  Computed in
    float64 a block of rows at a time (elementwise: the same numbers as one whole-grid pass).
    """
    out = _filter_rows(h, w, range(len(BAND_CENTERS)), w // 2 + 1)
    out.setflags(write=False)
    return out


def _band_filter(h: int, w: int, b: int, cols: int) -> np.ndarray:
    """``band_filters(h, w)[b, :, :cols]`` computed alone (the same numbers), without the other bands."""
    return _filter_rows(h, w, (b,), cols)[0]


def _filter_rows(h: int, w: int, bands: range | tuple[int, ...], cols: int) -> np.ndarray:
    """The responses of ``bands`` on the first ``cols`` columns of the ``rfft2`` grid, ``(len(bands), h, cols)``
    float32: float64 a block of rows at a time (elementwise, so the same numbers as one whole-grid pass)."""
    out = np.empty((len(bands), h, cols), dtype=np.float32)
    for r0 in range(0, h, _BLOCK_ROWS):
        f = _radial_rows(h, w, r0, min(r0 + _BLOCK_ROWS, h), cols)
        for i, b in enumerate(bands):
            out[i, r0:r0 + f.shape[0]] = _band_response(f, BAND_CENTERS[b], b == len(BAND_CENTERS) - 1)
    out[:, 0, 0] = 0.0  # the mean (DC) is never band energy
    return out


@lru_cache(maxsize=16)
def band_gains(h: int, w: int) -> np.ndarray:
    """Fraction of white-noise power each band passes: ``mean |H_b|^2`` over the full plane, ``(n_bands,)``."""
    wt = rfft_weights(h, w).astype(np.float64)
    # band by band: one float64 band at a time, summed like the whole stack's rows
    return np.array([(b.astype(np.float64) ** 2 * wt).sum() for b in band_filters(h, w)]) / (h * w)


@lru_cache(maxsize=16)
def band_columns(h: int, w: int) -> tuple[int, ...]:
    """Per band, how many leading ``rfft2`` columns hold a nonzero filter response (the rest are zero).

    ``low`` reaches 1/8 cycle/px, so only its first ``w/8`` columns are ever nonzero;
    :func:`band_images` transforms just those along the first axis.
    """
    nz = band_filters(h, w) != 0
    return tuple(int(np.flatnonzero(b.any(axis=0))[-1]) + 1 if b.any() else 1 for b in nz)


def band_images(spec_y: np.ndarray, shape: tuple[int, int], *, squared: bool = False) -> np.ndarray:
    """Band-passed luma images ``(n_bands, H, W)`` float32 from ``rfft2(Y)`` of an ``(H, W)`` image.

    Values are in the units of the input (code values); with ``squared`` their
    squares, the per-pixel band power that tiles and regions average (squared as
    each band leaves its transform: no second pass over the stack).  The bands one
    at a time, without the stack: :func:`iter_band_images`.
    """
    h, w = shape
    out = np.empty((len(BAND_CENTERS), h, w), dtype=np.float32)
    for _ in iter_band_images(spec_y, shape, squared=squared, out=out):
        pass
    return out


def iter_band_images(spec_y: np.ndarray, shape: tuple[int, int], *, squared: bool = False,
                     out: np.ndarray | None = None):
    """Yield ``(b, image)`` for each band ``b`` in order: the ``(H, W)`` float32 planes of :func:`band_images`,
    each a new array (a large image's caller reduces each and lets it go), or ``out[b]`` where ``out``
    ``(n_bands, H, W)`` float32 is given.

    ``irfft2(spec_y * filt[b], s=shape)`` to float32 rounding, done as scipy's pocketfft
    does it -- a complex inverse transform along the first axis, then a real one along
    the second -- with the ``1/(H W)`` folded into the filters, and skipping the
    first-axis transforms of the columns where the band's filter is zero (three
    quarters of them for ``low``, half for ``mid``): their result is zero either way.
    """
    import scipy.fft as sfft

    h, w = shape
    ctype = np.result_type(spec_y.dtype, np.complex64).type
    ftype = np.float32 if ctype is np.complex64 else np.float64
    pairs = np.ascontiguousarray(spec_y, dtype=ctype).view(ftype)  # (h, 2 wr): re, im interleaved
    cols = band_columns(h, w)
    half = np.zeros((h, w // 2 + 1), dtype=ctype)
    half_pairs = half.view(ftype)
    filled = 0
    for b in range(len(BAND_CENTERS)):  # one 2-D transform at a time is ~2x faster than a batched one
        k = cols[b]
        half[:, k:filled] = 0.0  # columns beyond k must be zero (bands come in order of growing k: a no-op)
        filled = max(filled, k)
        # a real filter scales the real and imaginary parts alike: one float multiply per part
        np.multiply(pairs[:, :2 * k], _pair_filter(h, w, b, ftype), out=half_pairs[:, :2 * k])
        col = sfft.ifft(half[:, :k], axis=0, norm="forward", overwrite_x=True, workers=1)
        if not np.may_share_memory(col, half):  # overwrite_x allows the transform in place; it does not promise it
            half[:, :k] = col
        del col
        img = sfft.irfft(half, n=w, axis=1, norm="forward", workers=1)
        if out is not None:  # squared in the transform's precision, then to float32
            if squared:
                np.square(img, out=out[b], casting="same_kind")
            else:
                out[b] = img
            yield b, out[b]
        else:
            if squared:
                np.square(img, out=img)
            yield b, img if img.dtype == np.float32 else img.astype(np.float32)
        del img  # not held while the next band is transformed


@per_size(64)
def _pair_filter(h: int, w: int, b: int, dtype: type) -> np.ndarray:
    """Band ``b`` of :func:`band_filters` on its :func:`band_columns` times ``1/(H W)`` (the inverse
    transform's scale), each value twice: ``(h, 2 k)``, to multiply a spectrum viewed as interleaved
    real and imaginary parts (no complex arithmetic, and no scaling of the transforms' output)."""
    k = band_columns(h, w)[b]
    out = np.repeat((_band_filter(h, w, b, k).astype(np.float64) / (h * w)).astype(dtype), 2, axis=1)
    out.setflags(write=False)
    return out
