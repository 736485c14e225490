import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.measuring.driver import measure
from harness.measuring.tiles import make_grid


@pytest.mark.parametrize("bad,msg", [
    (np.zeros((32, 32)), r"shape \(H, W, 3\)"),
    (np.zeros((32, 32, 4)), r"shape \(H, W, 3\)"),
    (np.zeros((8, 32, 3)), "at least 16x16"),
    (np.full((32, 32, 3), np.nan), "NaN or inf"),
    (np.full((32, 32, 3), 1.5), r"must lie in \[0, 1\]"),
    (np.zeros((32, 32, 3), np.int32), "dtype must be uint8, uint16 or float"),
])
def test_bad_images_are_rejected_with_a_clear_message(bad, msg):
    with pytest.raises(ValueError, match=msg):
        measure(bad)


@pytest.mark.parametrize("mask,msg", [
    (np.zeros((16, 16)), "mask shape"),
    (np.full((32, 32), np.inf), "NaN or inf"),
    (np.zeros((32, 32)), "mask is empty"),
    (np.ones((32, 32)), "covers the whole image"),
])
def test_bad_masks_are_rejected(mask, msg):
    with pytest.raises(ValueError, match=msg):
        measure(np.zeros((32, 32, 3), np.uint8), mask)


def test_uint8_uint16_and_float_inputs_agree():
    rng = np.random.default_rng(0)
    img8 = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    m8 = measure(img8)
    m16 = measure(img8.astype(np.uint16) * 257)
    mf = measure(img8 / 255.0)
    for name in m8:
        np.testing.assert_allclose(m16[name].values, m8[name].values, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(mf[name].values, m8[name].values, rtol=1e-4, atol=1e-4)
    # a 16-bit image's LSB is 257 times finer, and so is its noise floor
    assert m16.meta["lsb"] == pytest.approx(255 / 65535)
    assert m16["mean"].bias[0] == pytest.approx(m8["mean"].bias[0] / 257, rel=1e-3)


def test_tile_values_match_a_slow_per_tile_reference():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    m = measure(img, tile=32)
    grid = make_grid(96, 128, 32)
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for r in (0, grid.rows - 1):
        for c in (0, grid.cols - 1):
            y0, x0 = r * grid.stride, c * grid.stride
            y1 = 96 if r == grid.rows - 1 else y0 + 32
            x1 = 128 if c == grid.cols - 1 else x0 + 32
            patch = y[y0:y1, x0:x1]
            assert m.value("contrast", f"tile=r{r}c{c} ch=Y") == pytest.approx(patch.std(), rel=1e-4)
            assert m.value("mean", f"tile=r{r}c{c} ch=Y") == pytest.approx(patch.mean(), rel=1e-5)


def test_region_slices_only_with_a_mask():
    img = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    plain, masked = measure(img), measure(img, mask)
    assert "seam_step" not in plain.metrics
    assert {"seam_step", "seam_grad", "seam_profile"} <= set(masked.metrics)
    assert "band=top region=ring ch=Y" in masked["band_power"].slices
    assert masked.meta["mask_coverage"] == pytest.approx(400 / 4096)


def test_measurement_round_trips_through_dict_and_frame():
    from harness.measuring.result import Measurement

    m = measure(np.random.default_rng(3).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    back = Measurement.from_dict(m.to_dict())
    for name in m:
        np.testing.assert_allclose(back[name].values, m[name].values, rtol=1e-6)  # 7 significant digits
    df = m.to_frame()
    assert list(df.columns) == ["metric", "slice", "value", "std", "bias"]
    assert len(df) == len(m)


images = arrays(np.uint8, st.tuples(st.integers(16, 48), st.integers(16, 48), st.just(3)))


@given(images)
def test_no_nan_on_any_valid_input(img):
    m = measure(img)
    for name in m:
        assert np.all(np.isfinite(m[name].values)), name
        assert np.all(m[name].std >= 0) and np.all(m[name].bias >= 0)


@given(arrays(np.float64, (32, 40, 3), elements=st.floats(0.1, 0.8)), st.floats(-0.1, 0.1))
def test_offset_invariance_of_spectral_and_contrast_slices(img, offset):
    a, b = measure(img), measure(img + offset)
    for name in ("band_power", "spectrum", "contrast", "periodic"):
        np.testing.assert_allclose(b[name].values, a[name].values, rtol=1e-3, atol=1e-3)
    # mean luma moves by exactly the offset (in code values)
    assert b.value("mean", "ch=Y") - a.value("mean", "ch=Y") == pytest.approx(offset * 255, abs=1e-2)


def test_anchor_region_measures_protected_texture():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    anchors = np.zeros((64, 64), bool)
    anchors[5:15, 5:40] = True
    m = measure(img, anchors=anchors)
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert m.value("contrast", "region=anchor ch=Y") == pytest.approx(y[anchors].std(), rel=1e-4)
    assert "band=top region=anchor ch=Y" in m["band_power"].slices
    assert "region=inside" not in " ".join(m["band_power"].slices)
    assert m.meta["anchor_px"] == 350
    # an empty anchor map adds no slices
    assert "anchor" not in " ".join(measure(img, anchors=np.zeros((64, 64), bool))["contrast"].slices)


def test_region_and_tile_values_line_up_with_their_names():
    """Every local slice against a direct computation on the band-passed image."""
    import scipy.fft as sfft

    from harness.measuring.bands import band_images

    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    mask = np.zeros((96, 96), bool)
    mask[30:50, 20:70] = True
    anchors = np.zeros((96, 96), bool)
    anchors[70:80, 10:90] = True
    m = measure(img, mask, anchors=anchors, tile=32)
    rgb = img.astype(np.float32)
    y = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    cb = 0.564 * (rgb[..., 2] - y)
    bands = band_images(sfft.rfft2(y), y.shape).astype(np.float64)
    from harness.measuring.regions import make_regions

    reg = make_regions(mask.astype(np.float32), ring=8)
    regions = {"inside": reg.inside, "ring": reg.ring, "outside": reg.outside, "anchor": anchors}
    for bi, b in enumerate(("low", "mid", "high", "top")):
        for name, sel in regions.items():
            assert m.value("band_power", f"band={b} region={name} ch=Y") == pytest.approx(
                (bands[bi][sel] ** 2).mean(), rel=1e-3)
        assert m.value("band_power", f"band={b} tile=r1c1 ch=Y") == pytest.approx(
            (bands[bi][16:48, 16:48] ** 2).mean(), rel=1e-3)
    for name, sel in regions.items():
        assert m.value("mean", f"region={name} ch=Cb") == pytest.approx(cb[sel].mean(), abs=1e-3)
    assert m.value("mean", "tile=r1c1 ch=Cb") == pytest.approx(cb[16:48, 16:48].mean(), abs=1e-3)


def test_metric_families_come_in_a_fixed_order():
    img = np.random.default_rng(6).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    assert list(measure(img, mask).metrics) == ["band_power", "spectrum", "periodic", "contrast", "mean", "chroma",
                                                "hue", "seam_step", "seam_profile", "seam_grad", "blockiness",
                                                "detail"]
