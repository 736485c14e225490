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
