"""``measure``: every slice value of one image -- the hot path.

One forward FFT per channel, one inverse FFT per band (luma only), one
windowed FFT for the peak detector, and a single pass of tile sums over a
stack of per-pixel maps: no Python loop runs over tiles or pixels.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from harness.measuring.result import Measurement, MetricValues
from harness.measuring.metrics import color, contrast, noise, seams, spectral
from harness.measuring.slices import (
    auto_tile,
    BAND_CENTERS,
    BAND_NAMES,
    CHANNELS,
    REGIONS,
    band_gains,
    make_grid,
    make_regions,
    rgb_to_ycc,
    slice_name,
)

__all__ = ["measure", "as_code_values", "check_mask"]

DEFAULT_RING = 8
DEFAULT_MASK_THRESHOLD = 0.5
# seam_profile: 1-px distance shells on each side of the mask border.
SEAM_SHELLS = 4


def as_code_values(image: Any, lsb: float | None = None) -> tuple[np.ndarray, float]:
    """Validate an image and return it as float32 8-bit code values plus one LSB in those units.

    Accepts ``(H, W, 3)`` uint8, uint16 or float in [0, 1].  Float images are
    assumed to come from 8-bit data (one LSB = 1 code value) unless ``lsb``
    (in [0, 1] units) says otherwise.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {arr.shape}")
    h, w = arr.shape[:2]
    if h < 16 or w < 16:
        raise ValueError(f"image must be at least 16x16 pixels, got {w}x{h}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32), 1.0 if lsb is None else float(lsb) * 255.0
    if arr.dtype == np.uint16:
        out = arr.astype(np.float32) * np.float32(255.0 / 65535.0)
        return out, 255.0 / 65535.0 if lsb is None else float(lsb) * 255.0
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError("image contains NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1.0 + 1e-6:
            raise ValueError(f"float image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return arr.astype(np.float32) * np.float32(255.0), 1.0 if lsb is None else float(lsb) * 255.0
    raise ValueError(f"image dtype must be uint8, uint16 or float, got {arr.dtype}")


def check_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """Validate a ``(H, W)`` mask (bool, uint8 0..255, or float in [0, 1]) → float32 in [0, 1]."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != tuple(shape):
        raise ValueError(f"mask shape {m.shape} does not match image shape {tuple(shape)}")
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    if m.dtype == np.uint16:
        return m.astype(np.float32) / 65535.0
    if m.dtype.kind == "f":
        if not np.all(np.isfinite(m)):
            raise ValueError("mask contains NaN or inf")
        if float(m.min()) < -1e-6 or float(m.max()) > 1.0 + 1e-6:
            raise ValueError("float mask values must lie in [0, 1]")
        return m.astype(np.float32)
    raise ValueError(f"mask dtype must be bool, uint8, uint16 or float, got {m.dtype}")


# Order of the per-pixel maps summed over tiles and regions.
_M_BANDS = slice(0, 4)
_M_Y, _M_Y2, _M_CB, _M_CR, _M_CHROMA = 4, 5, 6, 7, 8


@lru_cache(maxsize=32)
def _names(rows: int, cols: int, regions: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    from harness.measuring.slices import _tile_names

    tiles = _tile_names(rows, cols)
    radial = tuple(f"f={c:.4f}" for c in spectral.radial_centers())
    # local slices are band-major (and channel-major below) over tiles then
    # regions, matching the (band, tile+region) layout of the summed maps
    local = tuple(("tile", t) for t in tiles) + tuple(("region", r) for r in regions)
    band_power = (
        tuple(slice_name(band=b, ch=c) for c in CHANNELS for b in BAND_NAMES)
        + tuple(slice_name(band=b, ch="Y", **{k: v}) for b in BAND_NAMES for k, v in local)
    )
    scalar_y = (slice_name(ch="Y"),) + tuple(slice_name(tile=t, ch="Y") for t in tiles) + tuple(
        slice_name(region=r, ch="Y") for r in regions)
    per_ch = tuple(slice_name(ch=c) for c in CHANNELS) + tuple(
        slice_name(ch=c, **{k: v}) for c in CHANNELS for k, v in local)
    colour = ("all",) + tuple(slice_name(tile=t) for t in tiles) + tuple(slice_name(region=r) for r in regions)
    return {
        "band_power": band_power,
        "spectrum": tuple(slice_name(ch="Y", f=r[2:]) for r in radial),
        "periodic": tuple(slice_name(band=b, ch="Y") for b in BAND_NAMES),
        "contrast": scalar_y,
        "mean": per_ch,
        "chroma": colour,
        "hue": colour,
        "seam_step": (slice_name(region="border", ch="Y"),),
        "seam_grad": (slice_name(region="border", ch="Y"),),
    }


def measure(image: Any, mask: Any = None, *, anchors: Any = None, tile: int | None = None,
            ring: int = DEFAULT_RING, mask_threshold: float = DEFAULT_MASK_THRESHOLD,
            lsb: float | None = None) -> Measurement:
    """Measure all slices of one image.

    Parameters
    ----------
    image : array, shape (H, W, 3)
        uint8, uint16, or float in [0, 1].
    mask : array, shape (H, W), optional
        Soft mask in [0, 1] (bool and uint8 accepted), thresholded at
        ``mask_threshold`` into inside / ring / outside regions.
    anchors : array, shape (H, W), optional
        Protected texture regions (bool or soft, thresholded at 0.5) measured as
        one more region, ``anchor``: fine print and microprinting that must keep
        their micro-texture whatever happens to the mask.
    tile : int, optional
        Tile size in pixels (even, >= 8); tiles overlap by half.  Default:
        64, or a quarter of the short side for images under 256 px.
    ring : int
        Width in pixels of the border ring outside the mask.
    lsb : float, optional
        Quantisation step in [0, 1] units for float input (default 1/255).

    Returns
    -------
    Measurement
        Values in 8-bit code values (power in code²), each with the noise
        ``std`` and ``bias`` that a benign ±1 LSB change could cause.

    Raises
    ------
    ValueError
        For a wrong shape, dtype, range, NaN/inf, or an empty/full mask.
    """
    import scipy.fft as sfft

    rgb, lsb_code = as_code_values(image, lsb)
    h, w = rgb.shape[:2]
    sigma = noise.BENIGN_LSB * lsb_code
    regions = None
    if mask is not None:
        regions = make_regions(check_mask(mask, (h, w)), ring=ring, threshold=mask_threshold)
    anchor_map = None
    if anchors is not None:
        anchor_map = check_mask(anchors, (h, w)) >= 0.5
        if not anchor_map.any():
            anchor_map = None  # nothing to protect: no anchor slices
    region_names = (REGIONS if regions is not None else ()) + (("anchor",) if anchor_map is not None else ())

    ycc = rgb_to_ycc(rgb)
    spec = sfft.rfft2(ycc, axes=(-2, -1), workers=1)
    bands = spectral.band_images(spec[0], (h, w))
    gains = band_gains(h, w)

    y = ycc[0]
    yc = y - np.float32(y.mean())
    cb, cr = ycc[1], ycc[2]
    maps = np.empty((9, h, w), dtype=np.float32)
    np.multiply(bands, bands, out=maps[_M_BANDS])
    maps[_M_Y] = yc
    np.multiply(yc, yc, out=maps[_M_Y2])
    maps[_M_CB] = cb
    maps[_M_CR] = cr
    np.sqrt(cb * cb + cr * cr, out=maps[_M_CHROMA])

    grid = make_grid(h, w, tile if tile is not None else auto_tile(h, w))
    cells = grid.cell_sums(maps)
    glob = cells.sum(axis=(1, 2))[:, None]  # (9, 1)
    tiles = grid.tile_sums_from_cells(cells)  # (9, T)
    n_tile = grid.tile_counts()
    n_img = float(h * w)
    parts = [glob, tiles]
    counts = [np.array([n_img]), n_tile]
    if region_names:
        stacks = ([regions.stack()] if regions is not None else []) + (
            [anchor_map[None].astype(np.float32)] if anchor_map is not None else [])
        reg = np.concatenate(stacks).reshape(len(region_names), -1).astype(np.float64)
        parts.append(maps.reshape(9, -1).astype(np.float64) @ reg.T)
        counts.append(reg.sum(axis=1))
    sums = np.concatenate(parts, axis=1)  # (9, S) for S = 1 + T (+ 3)
    n = np.concatenate(counts)
    means = sums / np.maximum(n, 1.0)

    metrics: dict[str, MetricValues] = {}
    names = _names(grid.rows, grid.cols, region_names)

    # --- band power: global per channel (Y from the band images, Cb/Cr spectrally), tiles, regions
    chroma_bp = spectral.band_power_spectral(spec[1:], (h, w))
    bp_glob = np.concatenate([means[_M_BANDS, 0][None], chroma_bp])  # (3, B)
    bp_local = means[_M_BANDS, 1:]  # (B, T [+3])
    bp_vals = np.concatenate([bp_glob.ravel(), bp_local.ravel()])
    bp_n = np.concatenate([np.full(bp_glob.size, n_img), np.tile(n[1:], len(BAND_NAMES))])
    ch_gain = np.repeat([noise.CHANNEL_NOISE_GAIN[c] for c in CHANNELS], len(BAND_NAMES))
    bp_gain = np.concatenate([np.tile(gains, 3) * ch_gain, np.repeat(gains, n.size - 1)])
    std, bias = noise.power_noise(bp_vals, bp_n, bp_gain, sigma)
    metrics["band_power"] = MetricValues(names["band_power"], bp_vals, std, bias)

    # --- radially averaged power spectrum of luma
    psd, ncoef = spectral.radial_psd(spec[0], (h, w))
    std, bias = noise.psd_noise(psd, ncoef, sigma)
    metrics["spectrum"] = MetricValues(names["spectrum"], psd, std, bias)

    # --- periodic peaks (micro-tiling)
    pk, std, bias = spectral.periodic_power(y, sigma)
    metrics["periodic"] = MetricValues(names["periodic"], pk, std, bias)

    # --- RMS contrast of luma
    c = contrast.rms_contrast(sums[_M_Y], sums[_M_Y2], n)
    std, bias = noise.contrast_noise(c, n, sigma)
    metrics["contrast"] = MetricValues(names["contrast"], c, std, bias)

    # --- mean colour (Y un-centred), chroma and hue
    mean_ycc = np.stack([means[_M_Y] + float(y.mean()), means[_M_CB], means[_M_CR]])  # (3, S)
    n_loc = n[1:]
    mean_vals = np.concatenate([mean_ycc[:, 0], mean_ycc[:, 1:].ravel()])
    std, bias = noise.mean_noise(np.concatenate([np.full(3, n_img), np.tile(n_loc, 3)]), sigma)
    metrics["mean"] = MetricValues(names["mean"], mean_vals, std, bias)

    chroma = means[_M_CHROMA]
    std, bias = noise.mean_noise(n, sigma)
    metrics["chroma"] = MetricValues(names["chroma"], chroma, std, bias)

    zlen = np.hypot(means[_M_CB], means[_M_CR])
    hue = color.hue_degrees(means[_M_CB], means[_M_CR])
    std, bias = noise.hue_noise(zlen, n, sigma)
    metrics["hue"] = MetricValues(names["hue"], hue, std, bias)

    # --- seams across the mask border
    if regions is not None:
        edge, ringm = regions.edge, regions.ring
        n_e, n_r = float(edge.sum()), float(ringm.sum())
        if n_e > 0 and n_r > 0:
            step = float(y[edge].mean() - y[ringm].mean())
            step_std = sigma * np.sqrt(1.0 / n_e + 1.0 / n_r)
            metrics["seam_step"] = MetricValues(names["seam_step"], [step], [step_std], [0.0])
            shells = np.ceil(np.abs(regions.depth)).astype(np.int32) * np.sign(regions.depth).astype(np.int32)
            sel = (np.abs(shells) <= SEAM_SHELLS) & (shells != 0)
            idx = shells[sel] + SEAM_SHELLS
            cnt = np.bincount(idx, minlength=2 * SEAM_SHELLS + 1)
            prof = np.bincount(idx, weights=y[sel], minlength=2 * SEAM_SHELLS + 1) / np.maximum(cnt, 1)
            keep = cnt > 0
            keep[SEAM_SHELLS] = False
            d_names = tuple(slice_name(region="border", ch="Y", d=f"{d:+d}")
                            for d in range(-SEAM_SHELLS, SEAM_SHELLS + 1))
            std, bias = noise.mean_noise(cnt[keep], sigma)
            metrics["seam_profile"] = MetricValues(tuple(np.array(d_names)[keep]), prof[keep], std, bias)
            border = edge | ringm
            g = seams.gradient_energy_map(y)
            ge = float(g[border].mean())
            std, bias = noise.power_noise(np.array([ge]), n_e + n_r, seams.GRADIENT_GAIN,
                                          sigma, max_gain=seams.GRADIENT_MAX_GAIN)
            metrics["seam_grad"] = MetricValues(names["seam_grad"], [ge], std, bias)

    for name, mv in metrics.items():
        if not (np.all(np.isfinite(mv.values)) and np.all(np.isfinite(mv.std)) and np.all(np.isfinite(mv.bias))):
            raise FloatingPointError(f"metric {name!r} produced NaN or inf")  # a bug, not an input error

    meta: dict[str, Any] = {
        "height": h,
        "width": w,
        "tile": grid.tile,
        "stride": grid.stride,
        "tiles": [grid.rows, grid.cols],
        "lsb": lsb_code,
        "sigma": sigma,
        "bands": {b: c for b, c in zip(BAND_NAMES, BAND_CENTERS)},
    }
    if regions is not None:
        meta.update({"ring": ring, "mask_threshold": mask_threshold, "mask_coverage": regions.coverage})
    if anchor_map is not None:
        meta["anchor_px"] = int(anchor_map.sum())
    return Measurement(metrics, meta)
