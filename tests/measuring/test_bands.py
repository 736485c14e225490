import numpy as np
import pytest

from harness.measuring.bands import (
    BAND_CENTERS,
    BAND_NAMES,
    band_filters,
    band_gains,
    band_images,
    radial_frequency,
    rfft_weights,
)


def test_band_filters_form_a_partition_of_unity_above_low_center():
    filt = band_filters(128, 96).astype(np.float64)
    total = (filt**2).sum(axis=0)
    f = radial_frequency(128, 96)
    assert np.all(total <= 1.0 + 1e-5)
    np.testing.assert_allclose(total[f >= BAND_CENTERS[0]], 1.0, atol=1e-5)
    assert total[0, 0] == 0.0  # DC is never band energy


def test_band_gains_sum_to_the_covered_fraction_of_the_plane():
    g = band_gains(256, 256)
    assert g.shape == (4,)
    # bands cover everything but the base below 1/16 (partially) -> just under 1
    assert 0.98 < g.sum() < 1.0
    assert g[-1] > g[-2] > g[-3] > g[-4]  # octave bands: higher bands hold more of the plane


def test_band_names_follow_the_octave_centres():
    assert BAND_NAMES == ("low", "mid", "high", "top")
    assert BAND_CENTERS == (1 / 16, 1 / 8, 1 / 4, 1 / 2)
    assert band_filters(64, 48).shape == (len(BAND_NAMES), 64, 48 // 2 + 1)


@pytest.mark.parametrize("shape", [(32, 32), (33, 47)])
def test_rfft_weights_count_every_full_spectrum_coefficient_once(shape):
    h, w = shape
    assert rfft_weights(h, w).sum() == h * w


@pytest.mark.parametrize("band_index,freq", [(0, 1 / 16), (1, 1 / 8), (2, 1 / 4)])
def test_a_sinusoid_at_a_band_centre_passes_only_that_band(band_index, freq):
    import scipy.fft as sfft

    x = np.arange(128)
    y = np.tile(10.0 * np.cos(2 * np.pi * freq * x), (64, 1)).astype(np.float32)
    bands = band_images(sfft.rfft2(y), y.shape)
    assert bands.shape == (4, 64, 128) and bands.dtype == np.float32
    np.testing.assert_allclose(bands[band_index], y, atol=1e-3)  # the response at a centre is 1
    assert np.abs(np.delete(bands, band_index, axis=0)).max() < 1e-3


def test_pruned_band_images_equal_full_irfft2():
    """band_images skips the first-axis transforms of the columns a band's filter zeroes and folds the
    inverse transform's scale into the filters: the same images to float32 rounding, and their squares."""
    import scipy.fft as sfft

    from harness.measuring.bands import band_columns

    rng = np.random.default_rng(4)
    for h, w in ((64, 64), (97, 131), (130, 45), (16, 17)):
        cols = band_columns(h, w)
        assert list(cols) == sorted(cols) and cols[-1] == w // 2 + 1
        assert not band_filters(h, w)[0][:, cols[0]:].any()
        for dtype in (np.float32, np.float64):
            spec = sfft.rfft2((rng.random((h, w)) * 255).astype(dtype), workers=1)
            want = np.stack([sfft.irfft2(spec * f, s=(h, w), workers=1) for f in band_filters(h, w)])
            got = band_images(spec, (h, w))
            assert got.dtype == np.float32
            scale = np.abs(want).max()
            np.testing.assert_allclose(got, want, rtol=0, atol=3e-6 * scale if dtype == np.float32 else 1e-5)
            sq = band_images(spec, (h, w), squared=True)
            assert sq.dtype == np.float32
            np.testing.assert_allclose(sq, np.square(got), rtol=1e-6)
