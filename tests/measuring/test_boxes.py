"""Where a slice is: tile and region boxes in pixels of the measured image."""

import json

import numpy as np
import pytest

from harness.measuring.driver import measure
from harness.measuring.regions import bbox, make_regions
from harness.measuring.result import Measurement
from harness.measuring.tiles import cell_sizes, make_grid, tile_boxes


def _reference_boxes(h, w, tile):
    """From the grid's definition: cells of ``stride`` px (the last absorbing the remainder), a tile = 2x2 cells."""
    grid = make_grid(h, w, tile)
    s = grid.stride
    ny, nx = max(h // s, 1), max(w // s, 1)
    cy = np.minimum(np.arange(h) // s, ny - 1)  # the cell each pixel row / column falls in
    cx = np.minimum(np.arange(w) // s, nx - 1)
    out = {}
    for r in range(grid.rows):
        for c in range(grid.cols):
            ys = np.flatnonzero((cy == r) | ((cy == r + 1) & (ny > 1)))
            xs = np.flatnonzero((cx == c) | ((cx == c + 1) & (nx > 1)))
            out[f"r{r}c{c}"] = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
    return grid, out


@pytest.mark.parametrize("shape,tile", [((256, 256), 64), ((300, 517), 64), ((40, 20), 64), ((100, 130), 32),
                                        ((97, 161), 16), ((512, 512), 64)])
def test_tile_boxes_match_a_slow_reference_from_the_grid_definition(shape, tile):
    h, w = shape
    grid, ref = _reference_boxes(h, w, tile)
    assert dict(zip(grid.names, grid.boxes)) == ref
    assert tile_boxes(h, w, grid.stride) == grid.boxes
    # the pixel counts of the boxes are the tile counts the sums use
    areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in grid.boxes]
    np.testing.assert_array_equal(areas, grid.tile_counts())
    ry, rx = cell_sizes(h, w, grid.stride)
    assert sum(ry) == h and sum(rx) == w and len(ry) == len(grid.row_starts) and len(rx) == len(grid.col_starts)


def test_measured_tile_values_are_the_values_inside_their_boxes():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (97, 130, 3), dtype=np.uint8)
    m = measure(img, tile=32)
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    tiles = [s.split(" ")[0] for s in m["contrast"].slices if s.startswith("tile=")]
    for t, box in zip(tiles, m.boxes([f"{t} ch=Y" for t in tiles])):
        x0, y0, x1, y1 = box
        assert m.value("mean", f"{t} ch=Y") == pytest.approx(y[y0:y1, x0:x1].mean(), rel=1e-5)
        assert m.value("contrast", f"{t} ch=Y") == pytest.approx(y[y0:y1, x0:x1].std(), rel=1e-4)


def test_region_boxes_are_the_bounding_boxes_of_the_region_pixels():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    mask = np.zeros((120, 160), np.float32)
    mask[30:52, 70:101] = 0.9
    mask[60, 40] = 1.0  # a second, one-pixel blob widens the inside box
    anchors = np.zeros((120, 160), bool)
    anchors[100:110, 5:25] = True
    m = measure(img, mask, anchors=anchors, ring=4)
    reg = make_regions(mask, ring=4)
    want = {"inside": reg.inside, "ring": reg.ring, "outside": reg.outside, "border": reg.edge | reg.ring,
            "anchor": anchors}
    for name, sel in want.items():
        ys, xs = np.nonzero(sel)
        ref = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        assert m.box(f"region={name} ch=Y") == ref, name
        assert tuple(bbox(sel)) == ref
    assert m.box("region=inside ch=Y") == (40, 30, 101, 61)
    assert m.box("region=border ch=Y d=+2") == m.box("region=border ch=Y")  # seam shells: the border's box


def test_whole_image_slices_have_no_box_and_names_pick_their_location():
    img = np.random.default_rng(3).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    m = measure(img, tile=32)
    assert m.boxes(["ch=Y", "band=top ch=Cb", "all", "ch=Y f=0.0186"]) == [None] * 4
    assert m.box("band=high tile=r0c1 ch=Y") == (16, 0, 48, 32)
    assert m.box("tile=r2c4") == (64, 32, 96, 64)  # the last row and column reach the border
    assert m.box("tile=r9c9 ch=Y") is None  # not on this grid
    assert bbox(np.zeros((4, 4), bool)) is None


def test_boxes_survive_the_json_round_trip_and_old_documents_still_load():
    img = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[20:30, 10:40] = True
    m = measure(img, mask)
    doc = json.loads(json.dumps(m.to_dict()))
    back = Measurement.from_dict(doc)
    names = list(m["band_power"].slices)
    assert back.boxes(names) == m.boxes(names)
    assert back.box("region=inside ch=Y") == (10, 20, 40, 30)
    # a baseline written before region boxes existed: tiles still have boxes, regions none
    del doc["meta"]["region_boxes"]
    old = Measurement.from_dict(doc)
    assert old.box("region=inside ch=Y") is None and old.box("tile=r0c0 ch=Y") == m.box("tile=r0c0 ch=Y")
    # no grid in meta at all (a hand-made measurement): nothing has a box
    assert Measurement(m.metrics, {}).boxes(names) == [None] * len(names)


def test_without_mask_or_anchors_meta_is_unchanged():
    """Without a mask or anchors no region key appears in meta."""
    img = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert "region_boxes" not in measure(img).meta
    assert list(measure(img).meta) == ["height", "width", "tile", "stride", "tiles", "lsb", "sigma", "bands",
                                       "sub_tile", "sub_stride", "sub_tiles", "hue_hist",
                                       "grid_cells"]


def test_sub_tile_slices_get_the_sub_grid_boxes():
    img = np.random.default_rng(6).integers(0, 256, (128, 96, 3), dtype=np.uint8)
    m = measure(img, tile=32)
    assert (m.meta["sub_tile"], m.meta["sub_stride"], m.meta["sub_tiles"]) == (16, 8, [15, 11])
    assert m.box("band=top ch=Y sub=r0c0") == (0, 0, 16, 16)
    assert m.box("band=high ch=Y sub=r2c3") == (24, 16, 40, 32)
    assert m.box("band=top ch=Y sub=r14c10") == (80, 112, 96, 128)
    assert m.box("band=top tile=r0c0 ch=Y") == (0, 0, 32, 32)
