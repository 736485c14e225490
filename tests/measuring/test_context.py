import numpy as np
import pytest

from harness.measuring.bands import band_images
from harness.measuring.context import MAPS, prepare


def test_prepare_computes_the_shared_spectrum_once_for_all_channels():
    import scipy.fft as sfft

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    ctx = prepare(img)
    assert ctx.shape == (40, 56) and ctx.ycc.shape == (3, 40, 56)
    assert ctx.spec.shape == (3, 40, 56 // 2 + 1)
    np.testing.assert_allclose(ctx.spec, sfft.rfft2(ctx.ycc, axes=(-2, -1)), rtol=1e-5, atol=1e-2)
    assert ctx.y is ctx.ycc[0] or np.shares_memory(ctx.y, ctx.ycc)
    assert ctx.sigma == pytest.approx(1.25) and ctx.lsb == 1.0
    assert ctx.regions is None and ctx.anchors is None and ctx.layout.regions == ()


def test_slice_sums_columns_are_image_then_tiles_then_regions():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 10:30] = True
    anchors = np.zeros((64, 64), bool)
    anchors[50:60, 5:45] = True
    ctx = prepare(img, mask, anchors=anchors, tile=32, ring=4)
    s = ctx.sums
    assert ctx.layout.regions == ("inside", "ring", "outside", "anchor")
    assert s.sums.shape == (11, 1 + len(ctx.layout)) and s.n.shape == (1 + len(ctx.layout),)
    assert s.n[0] == 64 * 64
    np.testing.assert_array_equal(s.n[1:1 + 9], ctx.grid.tile_counts())
    assert list(s.n[-4:]) == [ctx.regions.inside.sum(), ctx.regions.ring.sum(), ctx.regions.outside.sum(), 400]
    # luma is centred on its image mean; chroma maps are not
    y = ctx.y.astype(np.float64)
    assert s.mean("y")[0] == pytest.approx(0.0, abs=1e-3)
    assert s.total("y2")[0] == pytest.approx(((y - y.mean()) ** 2).sum(), rel=1e-5)
    assert s.mean("cb")[-1] == pytest.approx(ctx.ycc[1][anchors].mean(), abs=1e-3)
    bands = band_images(ctx.spec[0], ctx.shape).astype(np.float64)
    np.testing.assert_allclose(s.mean("band_sq")[:, 0], (bands**2).mean(axis=(1, 2)), rtol=1e-4)
    assert s.mean("band_sq").shape == (4, s.n.size) and MAPS["chroma"] == 8


def test_meta_records_how_the_image_was_measured():
    img = np.zeros((64, 48, 3), np.uint8)
    mask = np.zeros((64, 48), np.float32)
    mask[10:20, 10:20] = 1.0
    meta = prepare(img, mask, ring=3).meta()
    assert (meta["height"], meta["width"], meta["tile"], meta["stride"]) == (64, 48, 16, 8)
    assert meta["ring"] == 3 and meta["mask_threshold"] == 0.5 and meta["mask_coverage"] == pytest.approx(100 / 3072)
    assert "anchor_px" not in meta and list(meta["bands"]) == ["low", "mid", "high", "top"]


def test_prepare_rejects_a_bad_tile():
    with pytest.raises(ValueError, match="tile must be an even number"):
        prepare(np.zeros((32, 32, 3), np.uint8), tile=9)


def test_sub_grid_bands_are_adjacent_rows_of_the_band_stack():
    from harness.measuring.bands import BAND_NAMES
    from harness.measuring.maps import _SUB_ROWS, SUB_BANDS

    assert BAND_NAMES[_SUB_ROWS] == SUB_BANDS == ("high", "top")
