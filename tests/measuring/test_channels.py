import numpy as np

from harness.measuring.channels import CHANNELS, rgb_to_ycc


def test_ycc_of_grey_has_no_chroma_and_luma_equals_grey():
    grey = np.full((4, 4, 3), 77.0, np.float32)
    y, cb, cr = rgb_to_ycc(grey)
    np.testing.assert_allclose(y, 77.0, rtol=1e-6)
    np.testing.assert_allclose(cb, 0.0, atol=1e-4)
    np.testing.assert_allclose(cr, 0.0, atol=1e-4)


def test_ycc_is_channel_first_float32_in_channel_order():
    rgb = np.zeros((2, 3, 3), np.float32)
    rgb[..., 2] = 100.0  # pure blue: positive Cb, negative Cr
    ycc = rgb_to_ycc(rgb)
    assert CHANNELS == ("Y", "Cb", "Cr")
    assert ycc.shape == (3, 2, 3) and ycc.dtype == np.float32
    np.testing.assert_allclose(ycc[:, 0, 0], [11.4, 0.564 * 88.6, 0.713 * -11.4], rtol=1e-5)
