"""harness.report.trend (the series, their drift and flags, the table) and trend_chart (what the
PNG and the HTML page draw), over a ten-night synthetic history (tests/trend_history.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("pyarrow")

import trend_history as th  # noqa: E402
from harness.errors import ConfigError, InputError  # noqa: E402
from harness.report.trend import MIN_STREAK_MOVE, Selection, build_trend, pattern_matcher, trend_table  # noqa: E402
from harness.report.trend_chart import figure, html_page, panel  # noqa: E402


@pytest.fixture(scope="module")
def hist(tmp_path_factory):
    return th.history(tmp_path_factory.mktemp("trend"))


def _series(view, case, metric, slc):
    return next(s for s in view.series if (s.case, s.metric, s.slice) == (case, metric, slc))


def test_drift_under_tolerance_is_flagged_near_and_trend(hist):
    view = build_trend(hist, Selection())
    assert view.suite == "nightly" and len(view.runs) == th.NIGHTS and view.rows == 4 * th.NIGHTS + 2
    drift = _series(view, *th.DRIFT)
    assert set(drift.statuses) == {"pass"}  # it never failed a night
    assert drift.used == pytest.approx(0.72) and drift.streak == 9 and drift.moved == pytest.approx(0.72)
    assert drift.flags == ("near", "trend")
    assert _series(view, "w/p/s1", "mean", "ch=Y").flags == ("fail",)
    assert _series(view, "v/p/s1", "band_power", "band=low ch=Y").flags == ()
    tiny = _series(view, "v/p/s1", "band_power", "band=mid ch=Y")
    # rose every night, but by 0.0009 of a tolerance in all: noise, not a trend
    assert tiny.streak == 9 and tiny.moved < MIN_STREAK_MOVE and tiny.flags == ()
    gone = _series(view, "w/p/s1", "hue", "tile=r0c0")
    assert list(gone.x) == [2, 3] and gone.statuses == ("fail", "fail") and gone.flags == ()  # not in the last run
    # ranked: flagged first (most drift first among them), the gone tile after the series of the last run
    assert [(s.metric, s.slice) for s in view.series] == [
        ("mean", "ch=Y"), ("band_power", "band=high ch=Y"), ("band_power", "band=low ch=Y"),
        ("band_power", "band=mid ch=Y"), ("hue", "tile=r0c0")]


def test_the_table_names_the_drifting_slice_and_its_flags(hist):
    text = trend_table(build_trend(hist, Selection(k="v/p")))
    line = next(ln for ln in text.splitlines() if "band=high ch=Y" in ln)
    assert re.fullmatch(r"v/p/s1\s+band_power\s+band=high ch=Y\s+10\s+1\.036\s+1 ± 0\.05\s+72%\s+\+0\.72 tol\s+"
                        r"up 9\s+near trend", line), line
    assert "3 series match -k 'v/p'; 1 flagged; showing all, most drift first" in text
    assert f"trend = it moved the same way in each of its last 5 or more runs (by >= {MIN_STREAK_MOVE} tolerance)" \
        in text


def test_the_cap_is_noted_with_what_it_hides(hist):
    view = build_trend(hist, Selection(), top=1)
    assert [s.slice for s in view.shown] == ["ch=Y"]
    assert view.cap_note() == ("5 series match all series; 2 flagged; showing the 1 that drifted most, 4 not shown "
                               "(1 flagged among them): narrow the selection (-k, --metric, --slice) or raise --top")


def test_the_png_draws_each_value_with_its_tolerance_band(hist):
    view = build_trend(hist, Selection(metrics=("band_power",), slices=("band=high*",)))
    fig = figure(view)
    ax = fig.axes[0]
    lines = {ln.get_gid(): ln for ln in ax.get_lines()}
    values = 1.0 + 0.004 * np.arange(th.NIGHTS)
    np.testing.assert_allclose(lines["value"].get_ydata(), values)
    np.testing.assert_allclose(lines["band-upper"].get_ydata(), np.full(th.NIGHTS, 1.05))
    np.testing.assert_allclose(lines["band-lower"].get_ydata(), np.full(th.NIGHTS, 0.95))
    np.testing.assert_allclose(lines["baseline"].get_ydata(), np.ones(th.NIGHTS))
    np.testing.assert_array_equal(lines["value"].get_xdata(), np.arange(th.NIGHTS))
    band = next(c for c in ax.collections if c.get_gid() == "band")
    ys = np.concatenate([p.vertices[:, 1] for p in band.get_paths()])
    assert ys.min() == pytest.approx(0.95) and ys.max() == pytest.approx(1.05)
    assert "failing" not in lines and ax.get_title(loc="left").endswith("near trend")
    failing = figure(build_trend(hist, Selection(k="w/p", metrics=("mean",)))).axes[0]
    bad = next(ln for ln in failing.get_lines() if ln.get_gid() == "failing")
    assert list(bad.get_xdata()) == [th.NIGHTS - 1] and list(bad.get_ydata()) == [6.0]


def test_the_svg_panel_maps_back_to_the_band_and_values(hist):
    view = build_trend(hist, Selection(slices=("band=high ch=Y",)))
    p = panel(view.shown[0], len(view.runs))
    lo, hi = p.y_range
    inv = lambda y: hi - (y - 8) / (150 - 16) * (hi - lo)  # noqa: E731 - the panel's own y scale, inverted
    (band,) = p.bands
    pts = np.array([[float(v) for v in xy.split(",")] for xy in band.split()])
    assert len(pts) == 2 * th.NIGHTS
    np.testing.assert_allclose([inv(y) for y in pts[:th.NIGHTS, 1]], 1.05, atol=2e-4)  # upper edge, left to right
    np.testing.assert_allclose([inv(y) for y in pts[th.NIGHTS:, 1]], 0.95, atol=2e-4)  # lower edge, back
    np.testing.assert_allclose([inv(d[1]) for d in p.dots], 1.0 + 0.004 * np.arange(th.NIGHTS), atol=2e-4)
    assert p.dots[-1][3] == "run 10: 1.036 (pass; baseline 1 ± 0.05)"


def test_the_html_page_escapes_what_the_history_holds(tmp_path):
    evil = '<script>alert("x")</script>'
    for day in range(3):
        rows = th.night_rows(day)
        rows[0]["slice"] = evil
        rows[0]["case"] = "v/p/<b>s1"
        th.write_night(tmp_path, day, rows)
    page = html_page(build_trend(tmp_path, Selection()))
    assert "<script" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page and "v/p/&lt;b&gt;s1" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched
    assert page.count("<polygon class=\"band\"") == 5 and page.count("<figure>") == 5


def test_windows_since_and_last(hist):
    last3 = build_trend(hist, Selection(slices=("band=high ch=Y",), last=3))
    assert [r.run_id for r in last3.runs] == [th.header(d)["run_id"] for d in (7, 8, 9)]
    assert last3.shown[0].streak == 2 and last3.shown[0].flags == ("near",)  # 2 steps: no trend yet
    since = build_trend(hist, Selection(slices=("band=high ch=Y",), since="2026-03-05"))
    assert len(since.runs) == 6 and since.shown[0].streak == 5 and since.shown[0].flags == ("near", "trend")
    with pytest.raises(InputError, match=r"\(suite nightly\): no runs since 2027-01-01"):
        build_trend(hist, Selection(since="2027-01-01"))


def test_a_rebake_starts_the_drift_afresh(tmp_path):
    for day in range(8):
        rows = th.night_rows(day)
        if day >= 5:  # rebaked on night 5 at the drifted value
            rows[0]["baseline"] = 1.02
        th.write_night(tmp_path, day, rows)
    s = build_trend(tmp_path, Selection(slices=("band=high ch=Y",))).shown[0]
    assert s.used == pytest.approx(0.008 / 0.05) and s.streak == 2 and s.flags == ()
    np.testing.assert_allclose(s.upper, [1.05] * 5 + [1.07] * 3)


def test_selections_that_match_nothing_or_too_much_name_it(hist):
    with pytest.raises(InputError, match=rf"history {re.escape(str(hist))} \(suite nightly, 10 runs\): no series "
                                         r"match -k 'nothing' --metric 'band_power'"):
        build_trend(hist, Selection(k="nothing", metrics=("band_power",)))
    with pytest.raises(InputError, match=r"--slice 'band\*' matches more than 25 values: narrow it"):
        build_trend(hist, Selection(slices=("band*",)), max_rows=25)
    with pytest.raises(ConfigError, match=r"no runs of suite 'smoke' \(it has: nightly\)"):
        build_trend(hist, Selection(suite="smoke"))
    with pytest.raises(ConfigError, match="-k 'a and': not a valid expression"):
        build_trend(hist, Selection(k="a and"))
    with pytest.raises(ConfigError, match=r"--top 0, --streak 5, --near 0.5: expected top >= 1"):
        build_trend(hist, Selection(), top=0)


def test_patterns_are_globs_exact_names_or_regular_expressions():
    m = pattern_matcher(["band=high*", "re:tile=r\\d+c0\\b", "ch=Y"], "--slice")
    assert [m(s) for s in ("band=high ch=Y", "tile=r12c0 ch=Y", "tile=r1c01", "ch=Y", "ch=Yx")] == \
        [True, True, False, True, False]
    assert pattern_matcher([], "--slice") is None
    with pytest.raises(ConfigError, match=r"--metric 're:\(': not a regular expression"):
        pattern_matcher(["re:("], "--metric")


def test_a_worst_tile_row_is_drawn_in_tolerances(tmp_path):
    # each night's worst tile is another tile with its own baseline: raw values would jump between them
    for day, (value, baseline) in enumerate([(1.2, 1.0), (10.6, 10.0), (2.8, 2.0)]):
        rows = th.night_rows(day)[:1]
        rows[0].update(slice="tile=worst ch=Y", value=value, baseline=baseline, delta=value - baseline, tolerance=1.0)
        th.write_night(tmp_path, day, rows)
    view = build_trend(tmp_path, Selection())
    s = view.shown[0]
    assert s.family and s.streak == 2 and s.moved == pytest.approx(0.6) and s.flags == ("near",)
    ax = figure(view).axes[0]
    lines = {ln.get_gid(): ln.get_ydata() for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["value"], [0.2, 0.6, 0.8])
    np.testing.assert_allclose(lines["band-upper"], [1, 1, 1])
    np.testing.assert_allclose(lines["band-lower"], [-1, -1, -1])
    np.testing.assert_allclose(lines["baseline"], [0, 0, 0])
    assert ax.get_ylabel() == "tolerances" and panel(s, 3).unit.startswith("in tolerances")


def test_a_run_without_rows_is_left_out_and_a_foreign_file_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    th.history(tmp_path, nights=3)
    th.write_night(tmp_path, 3, rows=[])  # kept nothing: nothing to draw, no time to place it by
    assert [r.run_id for r in build_trend(tmp_path, Selection()).runs] == [th.header(d)["run_id"] for d in range(3)]
    foreign = tmp_path / "suite=nightly" / "date=2026-03-09" / "x.parquet"
    foreign.parent.mkdir()
    pq.write_table(pa.table({"case": ["v/p/s1"], "value": [1.0]}), foreign)
    with pytest.raises(InputError, match=rf"history {re.escape(str(foreign))}: column 'run_id' missing: not a "
                                         r"history file"):
        build_trend(tmp_path, Selection())
