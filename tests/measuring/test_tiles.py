import numpy as np
import pytest

from harness.measuring.tiles import auto_tile, make_grid, tile_names


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


def test_tile_names_are_row_major():
    assert tile_names(2, 3) == ("r0c0", "r0c1", "r0c2", "r1c0", "r1c1", "r1c2")


def test_grid_rejects_odd_tile():
    with pytest.raises(ValueError, match="tile must be an even number"):
        make_grid(64, 64, 33)


@pytest.mark.parametrize("shape,tile", [((512, 512), 64), ((1024, 300), 64), ((256, 256), 64), ((128, 160), 32),
                                        ((96, 96), 24), ((40, 40), 16)])
def test_auto_tile_keeps_local_defects_large_in_small_images(shape, tile):
    assert auto_tile(*shape) == tile
