"""The derived noise floors hold empirically: benign noise stays inside bias + k*std."""

import numpy as np
import pytest

from harness.measuring.metrics.noise import BENIGN_LSB, contrast_noise, hue_noise, mean_noise, power_noise


def test_power_noise_bias_and_std_match_monte_carlo():
    rng = np.random.default_rng(0)
    n, gain, sigma = 4096, 0.3, 1.0
    signal = rng.normal(0, 5, n)
    power = float((signal**2).mean())
    # noise passed by a band of gain G acts like white noise of variance sigma^2 G here
    draws = [((signal + rng.normal(0, sigma * np.sqrt(gain), n)) ** 2).mean() - power for _ in range(400)]
    std, bias = power_noise(np.array([power]), n, gain, sigma)
    assert np.mean(draws) == pytest.approx(bias[0], rel=0.15)
    assert np.std(draws) < std[0]  # derived std is an upper bound (|H| <= 1)
    assert np.std(draws) > 0.3 * std[0]  # ... and not a wild one


def test_mean_noise_allows_one_lsb_offset():
    std, bias = mean_noise(np.array([100.0]), BENIGN_LSB)
    assert bias[0] == pytest.approx(1.0)
    assert std[0] == pytest.approx(BENIGN_LSB / 10)


def test_contrast_noise_bias_is_exact_for_added_variance():
    std, bias = contrast_noise(np.array([3.0, 0.0]), 1000.0, 4.0)
    np.testing.assert_allclose(bias, [2.0, 4.0])  # sqrt(9+16)-3, sqrt(16)-0


def test_hue_noise_undefined_below_min_chroma():
    std, bias = hue_noise(np.array([0.5, 50.0]), 1000.0, 1.25)
    assert bias[0] == 180.0
    assert bias[1] == pytest.approx(np.degrees(np.arctan(0.625 / 50.0)))
