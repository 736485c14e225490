"""denoise: Intel Open Image Denoise (trained network in pyoidn) removes Gaussian noise from a photograph."""

from __future__ import annotations

import numpy as np
import pytest
from stage_helpers import photo, psnr

from harness.errors import ConfigError
from harness.stages import StageContext, build_backend, run_stage

pytest.importorskip("pyoidn")

CTX = StageContext(0)


@pytest.fixture(scope="module")
def noisy():
    clean = photo("astronaut", 128)
    rng = np.random.default_rng(0)
    return clean, np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)


def oidn(image, **params):
    return run_stage(build_backend("denoise", "oidn", params), image, CTX).image


def test_oidn_raises_psnr_on_sigma_25_noise(noisy):
    clean, img = noisy
    out = oidn(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert psnr(out, clean) > psnr(img, clean) + 4  # measured 20.8 -> 25.8 dB (256x256: 20.8 -> 27.7)


@pytest.mark.parametrize("quality", ["fast", "balanced"])
def test_other_qualities_also_denoise(noisy, quality):
    clean, img = noisy
    assert psnr(oidn(img, quality=quality), clean) > psnr(img, clean) + 3.5  # measured +5.1 (fast), +5.0 dB (balanced)


def test_deterministic_across_runs_and_thread_counts(noisy):
    img = noisy[1]
    a = oidn(img, threads=1)
    assert np.array_equal(a, oidn(img, threads=1))
    assert np.array_equal(a, oidn(img, threads=2))  # measured bit-identical


def test_strength_blends_and_zero_is_the_identity(noisy):
    clean, img = noisy
    off = oidn(img, strength=0.0)
    assert np.array_equal(off, img) and off is not img
    scores = [psnr(oidn(img, strength=s), clean) for s in (0.25, 0.5, 1.0)]
    assert psnr(img, clean) < scores[0] < scores[1] < scores[2]


def test_srgb_and_hdr_flags_change_the_result(noisy):
    img = noisy[1]
    base = oidn(img)
    assert not np.array_equal(base, oidn(img, srgb=True))
    assert not np.array_equal(base, oidn(img, hdr=True))


def test_clean_and_odd_sized_inputs_stay_close():
    clean = photo("coffee", 64)[:37, :51]
    out = oidn(clean)
    assert out.shape == clean.shape and psnr(out, clean) > 30  # measured 42.1 dB


@pytest.mark.parametrize("params", [{"quality": "ultra"}, {"strength": 1.5}, {"threads": -1}, {"srgb": "yes"}])
def test_bad_parameters_are_config_errors(params):
    with pytest.raises(ConfigError):
        build_backend("denoise", "oidn", params)
