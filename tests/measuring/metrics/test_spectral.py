import numpy as np
import pytest

from harness.measuring.driver import measure
from harness.measuring.bands import BAND_NAMES, band_filters, band_gains, band_images
from harness.measuring.metrics.spectral import band_power_spectral, periodic_power, radial_psd


def _grey(y: np.ndarray) -> np.ndarray:
    """Luma image in code values -> float RGB in [0, 1] with Y == y."""
    return np.repeat((y / 255.0)[..., None], 3, axis=2)


def test_parseval_band_images_and_spectral_band_power_agree():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 10, (128, 160)).astype(np.float32)
    import scipy.fft as sfft

    spec = sfft.rfft2(y)
    bands = band_images(spec, y.shape)
    spatial = (bands.astype(np.float64) ** 2).mean(axis=(1, 2))
    spectral = band_power_spectral(spec[None], y.shape)[0]
    np.testing.assert_allclose(spatial, spectral, rtol=1e-4)
    # bands + the base residual (1 - sum |H_b|^2 below 1/16) = the variance
    f2 = band_filters(*y.shape).astype(np.float64) ** 2
    from harness.measuring.bands import rfft_weights

    p = np.abs(spec.astype(np.complex128)) ** 2 * rfft_weights(*y.shape)
    p[0, 0] = 0.0
    base = (p * (1.0 - f2.sum(axis=0))).sum() / y.size**2
    assert spectral.sum() + base == pytest.approx((y.astype(np.float64) - y.mean()).var(), rel=1e-5)


def test_white_noise_is_flat_across_bands_and_radial_bins():
    rng = np.random.default_rng(2)
    sigma = 8.0
    y = rng.normal(0, sigma, (256, 256)).astype(np.float32)
    import scipy.fft as sfft

    spec = sfft.rfft2(y)
    per_gain = band_power_spectral(spec[None], y.shape)[0] / band_gains(256, 256)
    np.testing.assert_allclose(per_gain, sigma**2, rtol=0.06)
    psd, n = radial_psd(spec, y.shape)
    big = n > 200  # bins with enough coefficients for a 10 % estimate
    np.testing.assert_allclose(psd[big], sigma**2, rtol=0.1)


@pytest.mark.parametrize("band_index,freq", [(0, 1 / 16), (1, 1 / 8), (2, 1 / 4)])
def test_sinusoid_puts_its_energy_in_one_band_and_one_peak(band_index, freq):
    n = 256
    x = np.arange(n)
    amp = 20.0
    y = np.tile(amp * np.cos(2 * np.pi * freq * x), (n, 1)).astype(np.float32)
    m = measure(_grey(128.0 + y), lsb=1e-9)
    bp = m["band_power"]
    glob = np.array([bp.get(f"band={b} ch=Y") for b in BAND_NAMES])
    assert glob[band_index] == pytest.approx(amp**2 / 2, rel=1e-3)
    others = np.delete(glob, band_index)
    assert np.all(others < 1e-6 * glob[band_index])
    peaks = m["periodic"].values
    assert np.argmax(peaks) == band_index
    assert peaks[band_index] > 0.5 * amp**2 / 2  # the sinusoid is (almost) all peak


def test_flat_field_has_no_band_energy_and_no_peaks():
    m = measure(np.full((64, 64, 3), 0.5))
    assert np.all(m["band_power"].values == pytest.approx(0.0, abs=1e-8))
    assert np.all(m["periodic"].values == pytest.approx(0.0, abs=1e-8))
    assert np.all(m["spectrum"].values == pytest.approx(0.0, abs=1e-8))


def test_periodic_detector_finds_micro_tiling_in_noise():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 6, (256, 256)).astype(np.float32)
    tile = rng.uniform(-1, 1, (8, 8)).astype(np.float32)
    tiled = base + 3.0 * np.tile(tile, (32, 32))
    p0 = periodic_power(base, 1.25)[0].sum()
    p1 = periodic_power(tiled, 1.25)[0].sum()
    pattern_power = float((3.0 * (tile - tile.mean())).var())
    assert p0 < 0.05 * pattern_power
    assert p1 - p0 > 0.5 * pattern_power


def _slow_periodogram(y):
    """Full-plane periodogram by an explicit DFT-free route: numpy's complex fft2 (no rfft tricks)."""
    return np.abs(np.fft.fft2(y.astype(np.float64))) ** 2


def test_radial_psd_matches_a_slow_per_coefficient_reference():
    import scipy.fft as sfft

    from harness.measuring.metrics.spectral import RADIAL_EDGES

    rng = np.random.default_rng(4)
    y = rng.normal(0, 5, (40, 52)).astype(np.float32)
    y = y + 3 * np.sin(np.arange(52) * 0.9)[None, :]
    psd, _ = radial_psd(sfft.rfft2(y), y.shape)
    full = _slow_periodogram(y)
    h, w = y.shape
    sums = np.zeros(len(RADIAL_EDGES) - 1)
    counts = np.zeros(len(RADIAL_EDGES) - 1)
    for i in range(h):
        for j in range(w):
            fy = (i if i <= h // 2 else i - h) / h
            fx = (j if j <= w // 2 else j - w) / w
            f = np.hypot(fy, fx)
            for b in range(len(RADIAL_EDGES) - 1):
                if RADIAL_EDGES[b] <= f < RADIAL_EDGES[b + 1]:
                    sums[b] += full[i, j]
                    counts[b] += 1
    ref = np.where(counts > 0, sums / np.maximum(counts, 1) / (h * w), 0.0)
    np.testing.assert_allclose(psd, ref, rtol=2e-4, atol=1e-6)


def test_periodic_power_matches_a_slow_reference():
    """Same peaks, found by explicit loops over the full (two-sided) spectrum."""
    from harness.measuring.metrics.peaks import BAND_CENTERS, PEAK_THRESHOLD, PEAK_WINDOW, _hann2d

    rng = np.random.default_rng(6)
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    y = (rng.normal(0, 2, (h, w)) + 6 * np.cos(2 * np.pi * (xx * 8 / w + yy * 4 / h))
         + 4 * np.cos(2 * np.pi * xx * 20 / w)).astype(np.float32)
    got = periodic_power(y, 1.25)[0]
    win = _hann2d(h, w).astype(np.float64)
    full = _slow_periodogram((y - y.mean()) * win)
    norm = h * w * (win**2).sum()
    lo = np.asarray(BAND_CENTERS) / np.sqrt(2.0)
    ref = np.zeros(4)
    r = PEAK_WINDOW // 2
    for i in range(h):
        for j in range(w):
            fy = (i if i <= h // 2 else i - h) / h
            fx = (j if j <= w // 2 else j - w) / w
            if fx < 0 or (fx == 0 and fy < 0) or (j == w // 2 and w % 2 == 0 and fx < 0):
                continue  # count each conjugate pair once, like the rfft half-plane
            f = np.hypot(fy, fx)
            b = np.searchsorted(lo, f, side="right") - 1
            if b < 0:
                continue

            def at(di, dj):
                return full[(i + di) % h, min(max(j + dj, 0), w - 1)] if 0 <= j + dj < w // 2 + 1 else \
                    full[(i + di) % h, min(max(j + dj, 0), w // 2)]

            p3 = sum(at(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1))
            outer = sum(at(di, dj) for di in range(-r, r + 1) for dj in range(-r, r + 1))
            bg9 = (outer - p3) * 9 / (PEAK_WINDOW**2 - 9)
            is_max = all(full[i, j] >= at(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1))
            if is_max and p3 > PEAK_THRESHOLD * bg9:
                weight = 1.0 if j == 0 or (w % 2 == 0 and j == w // 2) else 2.0
                ref[b] += weight * (p3 - PEAK_THRESHOLD * bg9)
    ref /= norm
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-6)
    assert got[1] > 0 and got[2] > 0  # the two lines (f = 0.15 and 0.31) land in mid and high


def test_band_power_family_names_every_slice_and_finds_a_sinusoid_in_every_tile():
    from harness.measuring.context import prepare
    from harness.measuring.metrics.spectral import band_power

    n = 256
    y = np.tile(20.0 * np.cos(2 * np.pi * np.arange(n) / 4), (n, 1)).astype(np.float32)  # f = 1/4: high
    mask = np.zeros((n, n), bool)
    mask[64:128, 64:160] = True
    out = band_power(prepare(_grey(128.0 + y), mask, lsb=1e-9))
    assert set(out) == {"band_power"}
    bp = out["band_power"]
    assert bp.slices[:4] == tuple(f"band={b} ch=Y" for b in BAND_NAMES)
    assert bp.slices[4:12] == tuple(f"band={b} ch={c}" for c in ("Cb", "Cr") for b in BAND_NAMES)
    n_main = 12 + 4 * (7 * 7 + 3)
    assert bp.slices[12] == "band=low tile=r0c0 ch=Y" and bp.slices[n_main - 1] == "band=top region=outside ch=Y"
    # then the high and top bands on the sub-grid of 32-px tiles (stride 16): 15 x 15 of them
    assert bp.slices[n_main] == "band=high ch=Y sub=r0c0" and bp.slices[-1] == "band=top ch=Y sub=r14c14"
    assert len(bp) == n_main + 2 * 15 * 15
    assert bp.get("band=high ch=Y sub=r7c3") == pytest.approx(200.0, rel=1e-3)
    assert bp.get("band=top ch=Y sub=r7c3") < 1e-6
    assert bp.get("band=high tile=r3c5 ch=Y") == pytest.approx(200.0, rel=1e-3)
    assert bp.get("band=high region=ring ch=Y") == pytest.approx(200.0, rel=1e-3)
    assert bp.get("band=top region=ring ch=Y") < 1e-6
    assert bp.get("band=high ch=Cb") < 1e-6  # grey: no chroma


def test_spectrum_and_periodic_families_name_their_slices():
    from harness.measuring.context import prepare
    from harness.measuring.metrics.spectral import periodic, radial_centers, spectrum

    ctx = prepare(np.random.default_rng(8).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    sp = spectrum(ctx)["spectrum"]
    assert sp.slices[0] == "ch=Y f=0.0186" and sp.slices[-1] == "ch=Y f=0.5946"
    assert len(sp) == len(radial_centers())
    assert periodic(ctx)["periodic"].slices == ("band=low ch=Y", "band=mid ch=Y", "band=high ch=Y", "band=top ch=Y")
