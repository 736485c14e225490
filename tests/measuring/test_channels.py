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


def test_planar_conversion_gives_the_plain_expressions_bit_for_bit():
    coef = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    rng = np.random.default_rng(3)
    for rgb in (rng.integers(0, 256, (37, 53, 3)).astype(np.float32), rng.random((20, 31, 3)) * 255.0):
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        y = coef[0] * r + coef[1] * g + coef[2] * b
        want = np.stack((y, np.float32(0.564) * (b - y), np.float32(0.713) * (r - y)))
        got = rgb_to_ycc(rgb)
        assert got.dtype == want.dtype == rgb.dtype
        assert np.array_equal(got, want)
