"""A failing case's diagnostic figures (harness.report.figures): the difference is non-zero exactly
where the candidate changed, boxes land on their pixels, the spectrum peaks where the image's energy
is, the tile heatmap sits on the tiles, a missing reference is said in the title (never an error),
and a passing case has none."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.comparing.checks import Check
from harness.measuring.result import Measurement, MetricValues
from harness.report.figures import case_figures, failing_marks, tile_severities
from harness.report.figures_images import (BACKGROUND, FLOOR, GAP, OTHER, WORST, Mark, amplified_difference,
                                           compare_strip, tile_cells, tile_heatmap)
from harness.report.figures_spectrum import band_edges, radial_profile
from harness.report.schema import CaseResult, Report
from harness.run.store import ImageStore
from harness.suite.baselines.store import BaselineStore

H, W = 128, 160
BOX = (40, 24, 72, 56)  # x0, y0, x1, y1: where the candidate differs (ends exclusive)
CASE = "v/p/s1"
BANDS = {"low": 0.0625, "mid": 0.125, "high": 0.25, "top": 0.5}


def pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured reference (codes 40..200) and the candidate: +40 inside BOX, nothing else changed."""
    rng = np.random.default_rng(3)
    ref = rng.integers(40, 201, size=(H, W, 3), dtype=np.uint8)
    cand = ref.copy()
    x0, y0, x1, y1 = BOX
    cand[y0:y1, x0:x1] += 40
    return ref, cand


def test_the_difference_is_non_zero_exactly_where_the_candidate_changed():
    ref, cand = pair()
    cand[100, 150, 1] += 1  # a one-code change elsewhere is visible too
    levels, gain = amplified_difference(ref, cand)
    expect = np.zeros((H, W), bool)
    expect[BOX[1]:BOX[3], BOX[0]:BOX[2]] = True
    expect[100, 150] = True
    assert np.array_equal(levels > 0, expect)
    assert gain == 4  # 255 / 40 = 6.4: the power of two below it
    assert levels[30, 50] == round(FLOOR + (255 - FLOOR) * 160 / 255) and levels[100, 150] == round(
        FLOOR + (255 - FLOOR) * 4 / 255)


def test_the_compare_strip_draws_the_box_on_its_pixels_in_every_panel():
    ref, cand = pair()
    strip = compare_strip(cand, ref, [Mark(1, BOX, "band_power [tile=r0c1] 3 x tolerance")])
    assert strip.factor == 1 and strip.gain == 4
    assert [o[0] for o in strip.origins] == [0, W + GAP, 2 * (W + GAP)]
    x0, y0, x1, y1 = BOX
    for ox, oy in strip.origins:
        px = strip.image
        for x, y in ((x0, y0), (x1 - 1, y1 - 1), (x0, y1 - 1), (x1 - 1, y0)):  # the corners, ends exclusive
            assert tuple(px[oy + y, ox + x]) == WORST
        assert tuple(px[oy + y0 - 1, ox + x0]) != WORST and tuple(px[oy + y1, ox + x1]) != WORST
    dx, dy = strip.origins[2]
    assert strip.image[dy + 50, dx + 66].min() > 0  # inside the box, away from the rank label
    assert not strip.image[dy + 100, dx + 120].any()  # nothing changed there


def test_a_reduced_strip_scales_its_boxes_by_the_same_factor():
    ref, cand = pair()
    strip = compare_strip(cand, ref, [Mark(1, BOX, "x"), Mark(2, (0, 0, 16, 16), "y")], longest=80)
    assert strip.factor == 2
    ox, oy = strip.origins[1]
    assert tuple(strip.image[oy + 12, ox + 20]) == WORST and tuple(strip.image[oy + 27, ox + 35]) == WORST
    assert tuple(strip.image[oy + 7, ox]) == OTHER and tuple(strip.image[oy, ox + 7]) == OTHER  # (0, 0, 8, 8) there


def test_the_marks_are_the_worst_distinct_boxes_and_a_whole_image_box_is_not_one():
    checks = [Check("a", "tile=r0c0", 1, 0, 1, 0.5, "fail", (0, 0, 64, 64)),
              Check("b", "tile=r0c1", 1, 0, 4, 1.0, "fail", (32, 0, 96, 64)),  # overlaps a worse one by half
              Check("c", "tile=r2c2", 1, 0, 3, 1.0, "fail", (64, 64, 128, 128)),
              Check("d", "region=outside", 1, 0, 9, 1.0, "fail", (0, 0, W, H)),
              Check("e", "all", 1, 0, 9, 1.0, "fail")]
    from harness.report.text import worst_checks

    marks, total = failing_marks(worst_checks(checks), (H, W, 3))
    assert [(m.rank, m.box) for m in marks] == [(1, (32, 0, 96, 64)), (2, (64, 64, 128, 128))]
    assert marks[0].label == "b [tile=r0c1] 4 x tolerance" and total == 3


@pytest.mark.parametrize("f0", [1 / 8, 0.3])
def test_the_spectrum_of_a_sinusoid_peaks_at_its_frequency(f0):
    x = np.arange(256, dtype=np.float64)[None, :]
    img = np.repeat((128 + 60 * np.cos(2 * np.pi * f0 * x)).repeat(256, axis=0)[:, :, None], 3, axis=2)
    f, density = radial_profile(img)
    i = int(np.nanargmax(density))
    assert abs(math.log2(f[i] / f0)) <= math.log2(f[1] / f[0])  # within one annulus
    # an annulus averages over its whole circumference, where a sinusoid has two coefficients: the
    # peak stands out from every annulus beyond its neighbours by a factor, not by orders
    assert density[i] > 5 * np.nanmax(np.concatenate([density[:i - 1], density[i + 2:]]))


def test_the_band_edges_are_where_neighbouring_bands_cross():
    edges = band_edges(BANDS)
    assert [e[0] for e in edges] == ["low", "mid", "high", "top"]
    name, lo, c, hi = edges[1]
    assert (name, c) == ("mid", 0.125) and lo == pytest.approx(0.125 / math.sqrt(2)) and hi == pytest.approx(
        edges[2][1])


def tiles_of(grid: int = 32, size: int = 64, bad: tuple[int, int] = (1, 2)) -> list[Check]:
    """Band checks on overlapping tiles (``size`` px every ``grid`` px) over H x W; tile ``bad`` at
    3x tolerance, the others at a quarter of it, and one skipped check."""
    out = []
    for r, y in enumerate(range(0, H - size + 1, grid)):
        for c, x in enumerate(range(0, W - size + 1, grid)):
            delta = 3.0 if (r, c) == bad else 0.25
            out.append(Check("band_power", f"band=mid tile=r{r}c{c} ch=Y", 1.0, 1.0, delta, 1.0,
                             "fail" if delta > 1 else "pass", (x, y, x + size, y + size)))
    out.append(Check("band_power", "band=top tile=r0c0 ch=Y", None, None, None, None, "skip", (0, 0, size, size)))
    return out


def test_overlapping_tiles_become_cells_that_meet_midway_between_their_centres():
    cells = dict(tile_cells(tile_severities(tiles_of())))
    assert cells[(0, 0, 48, 48)] == 0.25  # tile r0c0 (0..64): up to midway to r0c1's centre
    assert cells[(48, 48, 80, 80)] == 0.25  # tile r1c1 (32..96)
    assert cells[(80, 48, 112, 80)] == 3.0  # tile r1c2 (64..128)
    assert cells[(112, 80, 160, 128)] == 0.25  # the last tile reaches the edge
    assert len(cells) == 3 * 4


def test_the_heatmap_colours_the_failing_tile_on_the_image_and_keeps_its_colour_bar_labels_inside():
    ref, cand = pair()
    strip = tile_heatmap(cand, cand.shape, tile_cells(tile_severities(tiles_of())), "tiles")
    ox, oy = strip.origins[0]
    grey = np.rint(cand.astype(np.float64).mean(axis=2))
    px = strip.image[oy + 60, ox + 90].astype(int)  # inside the failing cell (80..112, 48..80)
    assert px.max() - px.min() > 30  # coloured, not grey
    quiet = strip.image[oy + 20, ox + 20].astype(int)  # a quarter of tolerance: mostly the image
    assert np.abs(quiet - grey[20, 20]).max() < 0.7 * 0.25 * 255 + 1
    assert (strip.image[:, -3:] == BACKGROUND).all()  # the labels end before the figure does


def write_baseline(tmp_path, images: dict[str, str]) -> None:
    m = Measurement({"mean": MetricValues(("all",), [1.0], [0.0], [0.0])}, {"bands": BANDS})
    BaselineStore("s", tmp_path / "baselines").bake(
        [(CASE, {"measurement": m.to_dict(), "stages": {}, "environment": {}, "pipeline": {}, "images": images})])


def failing_case(artifacts: dict[str, str], status: str = "fail") -> CaseResult:
    worst = Check("band_power", "band=mid tile=r0c1 ch=Y", 2.0, 1.0, 3.0, 1.0, status, BOX)
    return CaseResult(CASE, "v", "p", 1, status, None, {}, artifacts,
                      [worst, Check("mean", "all", 1.0, 1.0, 0.1, 1.0, "pass")])


def setup_run(tmp_path, *, reference: bool = True):
    """A run whose case's output differs from its baseline's reference inside BOX."""
    ref, cand = pair()
    store = ImageStore(tmp_path / "store")
    ref_ref, cand_ref = store.put(ref), store.put(cand)
    write_baseline(tmp_path, {"output": ref_ref} if reference else {})
    env = {"baselines": str(tmp_path / "baselines"), "store": str(tmp_path / "store")}
    case = failing_case({"output": cand_ref, "input": ref_ref})
    return Report("r", "s", "t", env, [case], complete=True), case, store, ref_ref


def test_a_failing_case_gets_every_figure_small_and_the_same_bytes_each_time(tmp_path):
    report, case, _, _ = setup_run(tmp_path)
    run = tmp_path / "run"
    figs = case_figures(report, case, run, tiles_of())
    assert [f.kind for f in figs] == ["compare", "zoom", "spectrum", "tiles", "checks"]
    assert figs[0].title.startswith("output image: reference | candidate | |difference| x4")
    assert "2 failing boxes drawn" in figs[0].title  # the worst check's and the failing tile's
    assert figs[1].title.startswith("zoom on the worst box: #1 band_power [band=mid tile=r0c1 ch=Y] 3 x tolerance "
                                     "@ x 40-72, y 24-56 (upscaled x6 nearest-neighbour)")
    assert "whole image" in figs[2].title and "not masked" in figs[2].title
    assert figs[3].title.startswith("worst |delta| / tolerance per tile: 12 tiles, 1 over tolerance")
    assert not any("no reference image" in f.title for f in figs)
    first = {f.href: (run / f.href).read_bytes() for f in figs}
    assert all(0 < len(b) <= 150_000 for b in first.values())
    assert sorted(p.name for p in (run / "charts").iterdir()) == sorted(h.split("/")[1] for h in first)
    again = case_figures(report, case, run, tiles_of())
    assert {f.href: (run / f.href).read_bytes() for f in again} == first


@pytest.mark.parametrize("how, why", [
    ("baked without images", "its baseline records no 'output' image (baked before reference images)"),
    ("pruned", "not in the image store"),
    ("no baselines folder", "the run records no baselines folder"),
    ("no baseline", "no baseline for this case in"),
])
def test_without_a_reference_the_figures_show_the_candidate_and_say_so(tmp_path, how, why):
    report, case, store, ref_ref = setup_run(tmp_path, reference=how != "baked without images")
    if how == "pruned":
        store.path(ref_ref).unlink()
        case.artifacts["output"] = store.put(pair()[1])  # the candidate is still there
    elif how == "no baselines folder":
        del report.environment["baselines"]
    elif how == "no baseline":
        report.environment["baselines"] = str(tmp_path / "elsewhere")
    figs = case_figures(report, case, tmp_path / "run", tiles_of())
    assert [f.kind for f in figs] == ["compare", "zoom", "spectrum", "tiles", "checks"]
    for f in figs[:3]:
        assert "(no reference image: " in f.title and why in f.title
    assert figs[0].title.startswith("output image: candidate; 2 failing boxes drawn")


def test_a_case_without_its_output_image_gets_the_charts_it_can_have(tmp_path):
    report, case, _, _ = setup_run(tmp_path)
    case.artifacts = {}
    figs = case_figures(report, case, tmp_path / "run", tiles_of())
    assert [f.kind for f in figs] == ["tiles", "checks"]
    assert "(no candidate image: on a grey ground)" in figs[0].title


def test_a_passing_case_has_no_figures(tmp_path):
    report, case, _, _ = setup_run(tmp_path)
    passing = failing_case(case.artifacts, status="pass")
    assert case_figures(report, passing, tmp_path / "run", tiles_of()) == []
    assert not (tmp_path / "run").exists()


def test_a_noisy_image_is_encoded_again_until_it_fits():
    from harness.report.figures_images import encode

    noise = np.random.default_rng(5).integers(0, 256, size=(400, 1212, 3), dtype=np.uint8)
    assert len(encode(noise, "jpg", limit=10 ** 9)) > 150_000  # quality 88: too large
    data = encode(noise, "jpg")
    assert len(data) <= 150_000 and data[:2] == b"\xff\xd8"
