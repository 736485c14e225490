import numpy as np
import pytest

from harness.measuring.context import prepare
from harness.measuring.metrics.color import circular_delta, hue_degrees, mean_chroma_hue


@pytest.mark.parametrize("rgb,hue", [((255, 0, 0), 108.64), ((0, 0, 255), 350.77), ((0, 255, 0), 231.66)])
def test_hue_of_primaries(rgb, hue):
    y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    cb, cr = 0.564 * (rgb[2] - y), 0.713 * (rgb[0] - y)
    assert hue_degrees(np.array(cb), np.array(cr)) == pytest.approx(hue, abs=0.01)


def test_circular_delta_wraps():
    np.testing.assert_allclose(circular_delta(np.array([1.0, 359.0]), np.array([359.0, 1.0])), [2.0, -2.0])


def test_mean_chroma_hue_of_a_red_field_on_every_slice():
    img = np.zeros((48, 48, 3), np.uint8)
    img[...] = (255, 0, 0)
    anchors = np.zeros((48, 48), bool)
    anchors[4:10, 4:30] = True
    out = mean_chroma_hue(prepare(img, anchors=anchors, tile=16))
    assert list(out) == ["mean", "chroma", "hue"]
    y = 0.299 * 255
    cb, cr = 0.564 * -y, 0.713 * (255 - y)
    mean = out["mean"]
    assert mean.slices[:4] == ("ch=Y", "ch=Cb", "ch=Cr", "tile=r0c0 ch=Y")
    assert mean.slices[-1] == "region=anchor ch=Cr"
    assert mean.get("ch=Y") == pytest.approx(y, abs=1e-3)
    assert mean.get("tile=r2c1 ch=Cb") == pytest.approx(cb, abs=1e-3)
    assert mean.get("region=anchor ch=Cr") == pytest.approx(cr, abs=1e-3)
    for name in ("chroma", "hue"):
        assert out[name].slices[:2] == ("all", "tile=r0c0")
        assert out[name].slices[-1] == "region=anchor"
    np.testing.assert_allclose(out["chroma"].values, np.hypot(cb, cr), rtol=1e-5)
    np.testing.assert_allclose(out["hue"].values, 108.64, atol=0.01)
