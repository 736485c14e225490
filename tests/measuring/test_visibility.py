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
