import numpy as np
import pytest

from harness.measuring.inputs import as_code_values, check_mask


def test_code_values_and_lsb_per_dtype():
    img8 = np.full((16, 16, 3), 51, np.uint8)
    rgb, lsb = as_code_values(img8)
    assert rgb.dtype == np.float32 and rgb.shape == (16, 16, 3) and lsb == 1.0
    assert np.all(rgb == 51.0)
    rgb, lsb = as_code_values(img8.astype(np.uint16) * 257)
    np.testing.assert_allclose(rgb, 51.0, rtol=1e-6)
    assert lsb == pytest.approx(255 / 65535)
    rgb, lsb = as_code_values(img8 / 255.0, lsb=1 / 1023)
    np.testing.assert_allclose(rgb, 51.0, rtol=1e-6)
    assert lsb == pytest.approx(255 / 1023)


@pytest.mark.parametrize("mask,expected", [
    (np.array([[True, False]]), [1.0, 0.0]),
    (np.array([[255, 0]], np.uint8), [1.0, 0.0]),
    (np.array([[65535, 0]], np.uint16), [1.0, 0.0]),
    (np.array([[0.25, 0.75]]), [0.25, 0.75]),
    (np.array([[[0.5], [1.0]]]), [0.5, 1.0]),  # (H, W, 1) is accepted
])
def test_masks_become_float32_in_unit_range(mask, expected):
    m = check_mask(mask, (1, 2))
    assert m.dtype == np.float32 and m.shape == (1, 2)
    np.testing.assert_allclose(m[0], expected)


def test_mask_of_wrong_dtype_is_rejected():
    with pytest.raises(ValueError, match="mask dtype"):
        check_mask(np.zeros((4, 4), np.int32), (4, 4))
