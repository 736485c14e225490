"""denoise: strength 0 is the identity, more strength removes more noise, default strength helps."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from stage_helpers import photo

from harness.stages import StageContext, build_backend, run_stage

BACKENDS = ["nlmeans", "bilateral", "tv"]
STRENGTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


def noise_sigma(image: np.ndarray) -> float:
    """Immerkær's fast noise estimate (1996) of the grey image: high-frequency energy."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    r = ndimage.convolve(image.astype(float).mean(axis=2), kernel)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6)


@pytest.fixture(scope="module")
def noisy():
    clean = photo("astronaut")
    rng = np.random.default_rng(0)
    return clean, np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)


def denoise(name, image, strength):
    return run_stage(build_backend("denoise", name, {"strength": strength}), image, StageContext(0)).image


@pytest.mark.parametrize("name", BACKENDS)
def test_strength_zero_is_the_identity(name, noisy):
    out = denoise(name, noisy[1], 0.0)
    assert np.array_equal(out, noisy[1]) and out is not noisy[1]


@pytest.mark.parametrize("name", BACKENDS)
def test_more_strength_removes_more_noise(name, noisy):
    sigmas = [noise_sigma(denoise(name, noisy[1], s)) for s in STRENGTHS]
    assert all(a > b for a, b in zip(sigmas, sigmas[1:])), sigmas
    assert sigmas[-1] < 0.5 * sigmas[0]  # measured: nlmeans 0.26, bilateral 0.42, tv 0.12 of the input's


@pytest.mark.parametrize("name", BACKENDS)
def test_default_strength_brings_the_image_closer_to_clean(name, noisy):
    clean, img = noisy
    b = build_backend("denoise", name, {})
    assert b.params.strength == 0.45
    err = lambda x: float(np.sqrt(np.mean((x.astype(float) - clean) ** 2)))  # noqa: E731
    assert err(run_stage(b, img, StageContext(0)).image) < 0.9 * err(img)


@pytest.mark.parametrize("name", BACKENDS)
def test_denoise_is_deterministic(name, noisy):
    assert np.array_equal(denoise(name, noisy[1], 0.6), denoise(name, noisy[1], 0.6))
