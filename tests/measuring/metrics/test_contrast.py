import numpy as np
import pytest

from harness.measuring.context import prepare
from harness.measuring.driver import measure
from harness.measuring.metrics.contrast import local_contrast, rms_contrast


def test_rms_contrast_of_flat_field_is_zero_and_of_two_levels_is_half_the_step():
    assert rms_contrast(np.array([10.0 * 64]), np.array([100.0 * 64]), np.array([64.0]))[0] == 0.0
    y = np.array([0.0] * 32 + [20.0] * 32)
    assert rms_contrast(np.array([y.sum()]), np.array([(y**2).sum()]), np.array([64.0]))[0] == pytest.approx(10.0)


def test_flat_image_has_zero_contrast_and_exact_mean_colour():
    img = np.zeros((64, 64, 3), np.uint8)
    img[...] = (200, 100, 50)
    m = measure(img)
    assert np.all(m["contrast"].values == 0.0)
    assert m.value("mean", "ch=Y") == pytest.approx(0.299 * 200 + 0.587 * 100 + 0.114 * 50, abs=1e-3)


def test_local_contrast_is_half_the_step_overall_and_zero_where_flat():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, 32:] = 20  # grey step: luma 0 | 20
    mask = np.zeros((64, 64), bool)
    mask[8:24, 4:20] = True  # inside the dark, flat half
    out = local_contrast(prepare(img, mask, tile=32))
    assert set(out) == {"contrast"}
    c = out["contrast"]
    assert c.slices[:2] == ("ch=Y", "tile=r0c0 ch=Y")
    n_loc = 1 + 9 + 3  # whole image, 3x3 tiles, 3 regions: per channel, channel-major
    assert c.slices[n_loc - 3:n_loc] == ("region=inside ch=Y", "region=ring ch=Y", "region=outside ch=Y")
    assert c.slices[n_loc:n_loc + 2] == ("ch=Cb", "tile=r0c0 ch=Cb") and c.slices[-1] == "region=outside ch=Cr"
    assert c.get("ch=Y") == pytest.approx(10.0, rel=1e-5)
    assert c.get("region=inside ch=Y") == 0.0
    assert c.get("tile=r0c0 ch=Y") == 0.0  # the top-left tile lies in the dark half
    assert c.get("tile=r0c1 ch=Y") == pytest.approx(10.0, rel=1e-5)  # the middle tile straddles the step
    assert np.all(c.std > 0) and np.all(c.bias >= 0)


def test_chroma_contrast_is_half_the_chroma_step_and_zero_on_grey():
    img = np.full((64, 64, 3), 128, np.uint8)
    img[:, 32:, 2] = 148  # blue step: Cb steps by 0.564 * (20 - 0.114 * 20)
    c = measure(img, tile=32)["contrast"]
    step = 0.564 * (20 - 0.114 * 20)
    assert c.get("ch=Cb") == pytest.approx(step / 2, rel=1e-4)
    assert c.get("tile=r0c0 ch=Cb") == pytest.approx(0.0, abs=1e-3)
    assert c.get("tile=r0c1 ch=Cb") == pytest.approx(step / 2, rel=1e-4)
    grey = measure(np.repeat(img[..., :1], 3, axis=2), tile=32)["contrast"]
    assert all(grey.get(s) == pytest.approx(0.0, abs=1e-3) for s in grey.slices if "Cb" in s or "Cr" in s)
