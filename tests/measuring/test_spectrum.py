"""Whole-image luma spectra (harness.measuring.spectrum): Parseval, the content scale a resize
leaves, and fine-band energy at that scale (the measurements of the cross-model checks)."""

import numpy as np
import pytest

from harness.measuring.spectrum import common_scale, content_scale, hf_energy, luma_spectrum


def upsampled(img, factor):
    from PIL import Image

    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((w * factor, h * factor), Image.Resampling.LANCZOS))


def test_the_spectrum_holds_the_mean_square_luma():
    """Parseval on the mirror-extended image: the powers add up to the luma's variance (code²)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 48, 3)).astype(np.float64)
    power, f = luma_spectrum(img)
    y = 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    assert power.shape == (64, 49) and f.shape == power.shape
    assert power.sum() == pytest.approx(y.var(), rel=1e-3)
    assert power[0, 0] == pytest.approx(0.0, abs=1e-6)  # the mean is removed


def test_a_flat_image_has_no_fine_band_energy():
    power, f = luma_spectrum(np.full((32, 32, 3), 100.0))
    energy, floor = hf_energy(power, f)
    assert energy == pytest.approx(0.0, abs=1e-9) and floor > 0.0


def test_the_content_scale_finds_an_upsampled_generator_output():
    sharp = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert content_scale(luma_spectrum(sharp.astype(np.float64))[0]) == 1
    assert content_scale(luma_spectrum(upsampled(sharp, 4).astype(np.float64))[0]) == 4
    # at scale 1 a 4x upsampled image has (almost) no high-band energy; at its own scale it has
    power, f = luma_spectrum(upsampled(sharp, 4).astype(np.float64))
    e1, floor = hf_energy(power, f, 1)
    e4, _ = hf_energy(power, f, 4)
    assert floor < e4 and e1 < 0.05 * e4


def test_the_common_scale_of_two_sharp_images_is_one():
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8).astype(np.float64) for _ in range(2))
    assert common_scale(luma_spectrum(a)[0], luma_spectrum(b)[0]) == 1
