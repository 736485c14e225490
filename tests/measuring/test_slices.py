import numpy as np
import pytest

from harness.measuring.slices import (
    BAND_CENTERS,
    band_filters,
    band_gains,
    make_grid,
    make_regions,
    radial_frequency,
    rgb_to_ycc,
    slice_name,
)


def test_band_filters_form_a_partition_of_unity_above_low_center():
    filt = band_filters(128, 96).astype(np.float64)
    total = (filt**2).sum(axis=0)
    f = radial_frequency(128, 96)
    assert np.all(total <= 1.0 + 1e-5)
    np.testing.assert_allclose(total[f >= BAND_CENTERS[0]], 1.0, atol=1e-5)
    assert total[0, 0] == 0.0  # DC is never band energy


def test_band_gains_sum_to_the_covered_fraction_of_the_plane():
    g = band_gains(256, 256)
    assert g.shape == (4,)
    # bands cover everything but the base below 1/16 (partially) -> just under 1
    assert 0.98 < g.sum() < 1.0
    assert g[-1] > g[-2] > g[-3] > g[-4]  # octave bands: higher bands hold more of the plane


def test_slice_names_are_stable_and_ordered():
    assert slice_name(ch="Y", band="high", tile="r3c5", region="ring") == "band=high tile=r3c5 region=ring ch=Y"
    assert slice_name() == "all"


@pytest.mark.parametrize("shape,tile", [((256, 256), 64), ((300, 517), 64), ((40, 20), 64), ((100, 130), 32)])
def test_tile_sums_match_a_slow_reference(shape, tile):
    h, w = shape
    rng = np.random.default_rng(0)
    maps = rng.random((2, h, w)).astype(np.float32)
    grid = make_grid(h, w, tile)
    got = grid.tile_sums(maps)
    counts = grid.tile_counts()
    ref, ref_n = [], []
    ry = list(grid.row_starts) + [h]
    rx = list(grid.col_starts) + [w]
    step_y = 2 if len(grid.row_starts) > 1 else 1
    step_x = 2 if len(grid.col_starts) > 1 else 1
    for r in range(grid.rows):
        for c in range(grid.cols):
            y0, y1 = ry[r], ry[r + step_y]
            x0, x1 = rx[c], rx[c + step_x]
            ref.append(maps[:, y0:y1, x0:x1].astype(np.float64).sum(axis=(1, 2)))
            ref_n.append((y1 - y0) * (x1 - x0))
    np.testing.assert_allclose(got, np.array(ref).T, rtol=1e-5)
    np.testing.assert_array_equal(counts, ref_n)
    assert len(grid.names) == grid.rows * grid.cols


def test_grid_default_tile_and_overlap():
    g = make_grid(512, 512)
    assert (g.tile, g.stride, g.rows, g.cols) == (64, 32, 15, 15)
    assert g.names[0] == "r0c0" and g.names[-1] == "r14c14"


def test_grid_rejects_odd_tile():
    with pytest.raises(ValueError, match="tile must be an even number"):
        make_grid(64, 64, 33)


def test_regions_match_brute_force_distances():
    mask = np.zeros((40, 50), np.float32)
    mask[15:25, 20:32] = 0.8  # soft values >= 0.5 are inside
    mask[10, 10] = 0.4  # below threshold: outside
    reg = make_regions(mask, ring=3)
    inside = mask >= 0.5
    ys, xs = np.nonzero(inside)
    yy, xx = np.mgrid[0:40, 0:50]
    d = np.sqrt((yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2).min(axis=2)
    np.testing.assert_array_equal(reg.inside, inside)
    np.testing.assert_array_equal(reg.ring, ~inside & (d <= 3))
    np.testing.assert_array_equal(reg.outside, ~inside & (d > 3))
    assert reg.coverage == pytest.approx(120 / 2000)
    assert (reg.inside.astype(int) + reg.ring + reg.outside == 1).all()


@pytest.mark.parametrize("fill,msg", [(0.0, "mask is empty"), (1.0, "covers the whole image")])
def test_regions_reject_empty_and_full_masks(fill, msg):
    with pytest.raises(ValueError, match=msg):
        make_regions(np.full((32, 32), fill, np.float32))


def test_ycc_of_grey_has_no_chroma_and_luma_equals_grey():
    grey = np.full((4, 4, 3), 77.0, np.float32)
    y, cb, cr = rgb_to_ycc(grey)
    np.testing.assert_allclose(y, 77.0, rtol=1e-6)
    np.testing.assert_allclose(cb, 0.0, atol=1e-4)
    np.testing.assert_allclose(cr, 0.0, atol=1e-4)


@pytest.mark.parametrize("shape,tile", [((512, 512), 64), ((1024, 300), 64), ((256, 256), 64), ((128, 160), 32),
                                        ((96, 96), 24), ((40, 40), 16)])
def test_auto_tile_keeps_local_defects_large_in_small_images(shape, tile):
    from harness.measuring.slices import auto_tile

    assert auto_tile(*shape) == tile
