import numpy as np
import pytest

from harness.measuring.driver import measure
from harness.measuring.metrics.color import circular_delta, hue_degrees
from harness.measuring.metrics.contrast import rms_contrast
from harness.measuring.metrics.seams import gradient_energy_map


def test_rms_contrast_of_flat_field_is_zero_and_of_two_levels_is_half_the_step():
    assert rms_contrast(np.array([10.0 * 64]), np.array([100.0 * 64]), np.array([64.0]))[0] == 0.0
    y = np.array([0.0] * 32 + [20.0] * 32)
    assert rms_contrast(np.array([y.sum()]), np.array([(y**2).sum()]), np.array([64.0]))[0] == pytest.approx(10.0)


@pytest.mark.parametrize("rgb,hue", [((255, 0, 0), 108.64), ((0, 0, 255), 350.77), ((0, 255, 0), 231.66)])
def test_hue_of_primaries(rgb, hue):
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    cb, cr = 0.564 * (rgb[2] - y), 0.713 * (rgb[0] - y)
    assert hue_degrees(np.array(cb), np.array(cr)) == pytest.approx(hue, abs=0.01)


def test_circular_delta_wraps():
    np.testing.assert_allclose(circular_delta(np.array([1.0, 359.0]), np.array([359.0, 1.0])), [2.0, -2.0])


def test_gradient_energy_of_a_ramp():
    y = np.tile(np.arange(10, dtype=np.float32) * 3.0, (5, 1))
    g = gradient_energy_map(y)
    assert g[2, 0] == pytest.approx(9.0)
    assert g[2, -1] == 0.0


def test_flat_image_has_zero_contrast_and_exact_mean_colour():
    img = np.zeros((64, 64, 3), np.uint8)
    img[...] = (200, 100, 50)
    m = measure(img)
    assert np.all(m["contrast"].values == 0.0)
    assert m.value("mean", "ch=Y") == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=1e-3)


def test_seam_profile_sees_a_bright_line_on_the_border():
    rng = np.random.default_rng(0)
    img = np.clip(128 + rng.normal(0, 5, (96, 96, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[30:60, 30:60] = 1.0
    seam = img.copy()
    seam[30:60, 30:60][:2] += 12  # top rows just inside the mask
    a, b = measure(img, mask), measure(seam, mask)
    prof_a, prof_b = a["seam_profile"], b["seam_profile"]
    assert prof_a.slices[0] == "region=border ch=Y d=-4"
    d = {s: vb - va for s, va, vb in zip(prof_a.slices, prof_a.values, prof_b.values)}
    assert d["region=border ch=Y d=-1"] > 1.5  # 2 of 30 rows on one of 4 sides
    assert abs(d["region=border ch=Y d=+3"]) < 1e-9
