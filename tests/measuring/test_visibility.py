"""The contrast-masking model: T(A) = T0 max(1, A/A0)^0.7 and the block-edge threshold."""

import numpy as np
import pytest

from harness.measuring import visibility as vis


def test_threshold_is_flat_below_the_knee_and_grows_as_a_power_above_it():
    assert vis.visible_change(0.0) == pytest.approx(vis.VIS_T0)
    assert vis.visible_change(vis.VIS_KNEE) == pytest.approx(vis.VIS_T0)
    a = np.array([16.0, 32.0, 64.0])
    t = vis.visible_change(a)
    np.testing.assert_allclose(t, vis.VIS_T0 * (a / vis.VIS_KNEE) ** 0.7)
    # log-log slope 0.7 (Legge & Foley's 0.6-0.7; Watson's w = 0.7)
    slope = np.diff(np.log(t)) / np.diff(np.log(a))
    np.testing.assert_allclose(slope, vis.VIS_EXPONENT)


def test_relative_threshold_falls_on_strong_texture():
    """Why not a flat relative tolerance: 10 % of fine energy (5 % of amplitude) is visible on strong
    texture, while a faint texture may lose more than that."""
    rel = lambda a: float(vis.visible_change(a)) / a
    assert rel(40.0) < 0.05 < rel(8.0)
    assert rel(2.0) > 0.2
    assert rel(8.0) > rel(16.0) > rel(40.0) > rel(100.0)


def test_thresholds_are_in_lsb_of_the_image():
    lsb16 = 255.0 / 65535.0
    assert vis.visible_change(0.0, lsb16) == pytest.approx(vis.VIS_T0 * lsb16)
    assert vis.visible_change(20.0 * lsb16, lsb16) == pytest.approx(vis.VIS_T0 * lsb16 * (20 / 8) ** 0.7)


def test_constants_sit_on_the_visibility_line():
    assert vis.INVISIBLE_LSB < vis.VISIBLE_LSB
    # a block pattern at the benign line adds 2 o² across block edges: the flat block threshold
    assert vis.BLOCK_JND == pytest.approx(2 * vis.INVISIBLE_LSB**2)
    assert vis.BLOCK_KNEE == pytest.approx(4 * vis.VIS_KNEE**2)
    # a 3-LSB window change split over four bands, diluted into a tile, lands around T0
    per_band = vis.VISIBLE_LSB / 2
    assert per_band * 0.25 <= vis.VIS_T0 <= per_band * 9 / 16


def test_an_addition_is_seen_at_its_own_rms_over_what_both_sides_share():
    # a new pattern on a patternless image: T0² (0.25 LSB²); over a shared pattern of amplitude A, T(A)²
    assert vis.visible_addition(0.0) == pytest.approx(vis.VIS_T0**2)
    assert vis.visible_addition(vis.VIS_KNEE**2) == pytest.approx(vis.VIS_T0**2)
    assert vis.visible_addition(32.0**2) == pytest.approx(float(vis.visible_change(32.0)) ** 2)
    # far below what an amplitude change of the same texture is allowed: 2 A T(A) + T(A)²
    a = 20.0
    assert vis.visible_addition(a * a) < 0.05 * (2 * a * float(vis.visible_change(a)))
    lsb16 = 255.0 / 65535.0
    assert vis.visible_addition(0.0, lsb16) == pytest.approx((vis.VIS_T0 * lsb16) ** 2)


def test_noise_over_the_whole_image_is_judged_on_the_invisible_line():
    # it changes every 32-px window by its own RMS: the line itself, above the benign floor
    from harness.measuring.metrics.noise import BENIGN_LSB

    assert vis.visible_noise() == pytest.approx(vis.INVISIBLE_LSB**2)
    assert BENIGN_LSB**2 < vis.visible_noise() < 2.0**2
    assert vis.visible_noise(0.5) == pytest.approx((0.5 * vis.INVISIBLE_LSB) ** 2)
