"""Whole-image hue for image-to-image checks (harness.measuring.hue): analytic cases."""

import numpy as np
import pytest

from harness.measuring.hue import code_values, hue_offset, mean_chroma


def test_code_values_of_uint8_and_grey():
    img = np.full((4, 5), 51, np.uint8)  # a grey (H, W) image is repeated into 3 channels
    codes = code_values(img)
    assert codes.shape == (4, 5, 3) and codes.dtype == np.float64
    assert np.allclose(codes, 51.0)


def test_grey_has_no_chroma_and_no_hue():
    z = mean_chroma(code_values(np.full((8, 8, 3), 128, np.uint8)))
    assert abs(z) < 1e-6
    assert hue_offset(z, complex(10.0, 0.0)) == (None, 0.0, None)


def test_hue_offset_of_a_quarter_turn_wraps_to_signed_degrees():
    ha, hb, off = hue_offset(complex(10.0, 0.0), complex(0.0, 10.0))
    assert (ha, hb) == (0.0, 90.0) and off == pytest.approx(90.0)
    ha, hb, off = hue_offset(complex(0.0, 10.0), complex(10.0, 0.0))
    assert off == pytest.approx(-90.0)


def test_chroma_below_the_floor_has_no_hue():
    # HUE_MIN_CHROMA is 2 code values: 1.9 has no defined hue, 2.1 does
    assert hue_offset(complex(1.9, 0.0), complex(2.1, 0.0))[0] is None
    assert hue_offset(complex(2.1, 0.0), complex(2.1, 0.0)) == (0.0, 0.0, 0.0)


def test_red_is_near_the_bt601_red_hue():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    z = mean_chroma(code_values(red))
    hue = hue_offset(z, z)[0]
    # BT.601 red: Cb < 0, Cr > 0 -> between 90 and 180 degrees (about 109 for pure red)
    assert 100.0 < hue < 120.0
