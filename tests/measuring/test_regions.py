import numpy as np
import pytest

from harness.measuring.regions import REGIONS, make_regions


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


def test_region_stack_follows_the_region_names():
    mask = np.zeros((32, 32), np.float32)
    mask[8:16, 8:16] = 1.0
    reg = make_regions(mask, ring=2)
    stack = reg.stack()
    assert stack.shape == (len(REGIONS), 32, 32) and stack.dtype == np.float32
    for i, name in enumerate(REGIONS):
        np.testing.assert_array_equal(stack[i], getattr(reg, name))
    assert (reg.edge <= reg.inside).all()
    assert (reg.depth[reg.inside] < 0).all() and (reg.depth[~reg.inside] > 0).all()


@pytest.mark.parametrize("fill,msg", [(0.0, "mask is empty"), (1.0, "covers the whole image")])
def test_regions_reject_empty_and_full_masks(fill, msg):
    with pytest.raises(ValueError, match=msg):
        make_regions(np.full((32, 32), fill, np.float32))


def test_regions_reject_a_zero_ring():
    mask = np.zeros((32, 32), np.float32)
    mask[8:16, 8:16] = 1.0
    with pytest.raises(ValueError, match="ring width"):
        make_regions(mask, ring=0)


def _reference(mask, ring):
    """The whole-image definition: two Euclidean distance transforms over the full image."""
    from scipy import ndimage

    inside = mask >= 0.5
    d_out = ndimage.distance_transform_edt(~inside)
    d_in = ndimage.distance_transform_edt(inside)
    return inside, (~inside) & (d_out <= ring), (~inside) & (d_out > ring), inside & (d_in <= ring), \
        np.where(inside, -d_in, d_out)


def test_cropped_bounded_distances_give_exactly_the_whole_image_regions():
    from scipy import ndimage

    rng = np.random.default_rng(7)
    for trial in range(60):
        h, w = (int(v) for v in rng.integers(16, 90, 2))
        mask = (ndimage.gaussian_filter(rng.random((h, w)), rng.uniform(1, 4)) > rng.uniform(0.5, 0.56))
        if not mask.any() or mask.all():
            continue
        ring = int(rng.integers(1, 12))
        reg = make_regions(mask.astype(np.float32), ring=ring)
        inside, ring_map, outside, edge, depth = _reference(mask, ring)
        np.testing.assert_array_equal(reg.inside, inside)
        np.testing.assert_array_equal(reg.ring, ring_map)
        np.testing.assert_array_equal(reg.outside, outside)
        np.testing.assert_array_equal(reg.edge, edge)
        near = np.abs(depth) <= max(ring, 4)  # depth is exact where the seam shells and the ring need it
        np.testing.assert_allclose(reg.depth[near], depth[near], rtol=1e-6)
        assert np.all(np.abs(reg.depth[~near]) > max(ring, 4))
        assert reg.counts == (inside.sum(), ring_map.sum(), outside.sum())


def test_bounded_sq_distance_is_exact_up_to_its_radius():
    from scipy import ndimage

    from harness.measuring.regions import bounded_sq_distance

    rng = np.random.default_rng(8)
    for trial in range(80):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        sites = rng.random((h, w)) < rng.choice([0.01, 0.05, 0.3])
        if not sites.any():
            continue
        r = int(rng.integers(1, 10))
        got = bounded_sq_distance(sites, r)
        ref = np.rint(ndimage.distance_transform_edt(~sites) ** 2).astype(int)
        near = ref <= r * r
        np.testing.assert_array_equal(got[near], ref[near])
        assert np.all(got[~near] > r * r)
        # a stack of maps is done map by map
        both = bounded_sq_distance(np.stack([sites, ~sites]), r)
        assert np.array_equal(both[0], got) and np.array_equal(both[1], bounded_sq_distance(~sites, r))
        if trial % 10 == 0:  # a radius too large for the int16 path: int32 throughout, same distances
            wide = bounded_sq_distance(sites, 130)
            assert wide.dtype == got.dtype == np.int32 and np.array_equal(wide, ref)


def test_region_sums_over_a_crop_or_the_whole_image_match_direct_sums():
    """A small mask is summed on its crop (outside = whole image minus the crop), a big one on the image."""
    from harness.measuring.context import prepare

    rng = np.random.default_rng(9)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    for box in ((40, 50, 30, 45), (12, 74, 10, 76)):  # a small mask, and one whose crop is most of the image
        mask = np.zeros((96, 96), bool)
        mask[box[0]:box[1], box[2]:box[3]] = True
        mask[box[0] + 3, box[3] + 1] = True  # not a plain rectangle
        ctx = prepare(img, mask, tile=32)
        reg = ctx.regions
        y = ctx.y.astype(np.float64)
        for i, sel in enumerate((reg.inside, reg.ring, reg.outside)):
            col = 1 + len(ctx.grid.names) + i
            assert ctx.sums.n[col] == sel.sum()
            assert ctx.sums.means[4, col] == pytest.approx((y - float(ctx.y_mean))[sel].mean(), abs=1e-3)
            assert ctx.sums.means[6, col] == pytest.approx(ctx.ycc[1][sel].mean(), abs=1e-3)
