"""PSNR and SSIM by strips of rows: the whole-image figures (scikit-image's SSIM) to float64 rounding."""

import numpy as np
import pytest

from harness.measuring.metrics import reference
from harness.measuring.metrics.reference import psnr, ssim


def _pair(shape=(301, 257, 3), seed=1):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("strip_values", [1 << 18, 40_000, 1])  # one strip, several, the 64-row minimum
def test_strips_give_the_whole_image_figures(monkeypatch, strip_values):
    from skimage.metrics import structural_similarity

    monkeypatch.setattr(reference, "STRIP_PIXELS", strip_values)
    a, b = _pair()
    af, bf = a.astype(np.float64), b.astype(np.float64)
    whole_ssim = structural_similarity(af, bf, channel_axis=2, data_range=255.0)
    whole_psnr = 10.0 * np.log10(255.0**2 / np.mean((af - bf) ** 2))
    # squared 8-bit differences are whole numbers: their float64 sum is exact in any order
    assert psnr(a, b) == whole_psnr
    # the SSIM map is the same per pixel; only the order of float64 additions differs (~1e-16 each)
    assert ssim(a, b) == pytest.approx(whole_ssim, rel=1e-12, abs=0)


def test_float_inputs_and_identical_images():
    a, b = _pair((64, 80, 3), seed=2)
    af, bf = a / 255.0, b / 255.0
    assert psnr(a, a) == float("inf")
    assert ssim(a, a) == pytest.approx(1.0, rel=1e-12)
    assert psnr(af, bf, data_range=1.0) == pytest.approx(psnr(a, b), rel=1e-12)


def test_ssim_refuses_an_image_under_the_window():
    a = np.zeros((6, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="SSIM needs at least 7x7 pixels, got 40x6"):
        ssim(a, a)
