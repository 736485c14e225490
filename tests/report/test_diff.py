"""harness diff: seeds folded into one row per vector × pipeline × check, sections that mean the
same in both directions, the config difference at the top, diff.json / diff.md / diff.html, and
an incomplete report on either side failing the diff."""

from __future__ import annotations

import json

import pytest
from diffruns import BOX, run

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.report.checks_table import compact, write_part
from harness.report.diff import diff_reports, unit_of
from harness.report.diff_html import write_diff_html
from harness.report.diff_text import diff_doc, diff_markdown, format_diff, write_diff_text
from harness.report.schema import CaseResult, Report


@pytest.fixture()
def ab(tmp_path):
    """A: three passing seeds, dilate 2.  B: dilate 6; seeds 1 and 2 fail the tile check, seed 3 passes."""
    a = run(tmp_path / "a", values={1: 1.1, 2: 1.0, 3: 0.9})
    b = run(tmp_path / "b", values={1: 2.0, 2: 2.5, 3: 1.2}, dilate=6,
            env={"git_sha": "b" * 40, "versions": {"numpy": "2.1"}})
    return a, b


def test_unit_of_strips_the_seed_only():
    assert [unit_of(c) for c in ("v/p/s3", "v/a+b/s12", "v/p/seeds")] == ["v/p", "v/a+b", "v/p/seeds"]


def test_three_seeds_fold_into_one_row_with_count_and_spread(ab):
    res = diff_reports(*ab)
    [row] = res.sections["newly_failing"]
    assert (row.unit, row.metric, row.slice, row.n_seeds, row.box) == ("v/p", "mean", "tile=r0c0 ch=Y", 3, BOX)
    assert row.status == "pass → fail in 2/3 seeds, pass → pass in 1/3"
    med, lo, hi = row.change  # B − A per seed: +0.9, +1.5, +0.3
    assert (round(med, 6), round(lo, 6), round(hi, 6)) == (0.9, 0.3, 1.5)
    assert (row.severity_a, row.severity_b) == (pytest.approx(0.2), pytest.approx(3.0))
    assert res.counts == {"newly_failing": 1, "newly_fixed": 0, "still_failing": 0, "moved": 0, "only_in_a": 0,
                          "only_in_b": 0, "unchanged": 1, "checks": 6}
    [u] = res.units
    assert (u.unit, u.status, u.newly_failing, u.worst_seed) == ("v/p", "pass → fail in 2/3 seeds, pass → pass in 1/3", 1, 2)
    assert res.failed and res.regressed_units == [u]
    text = format_diff(res)
    assert text.count("tile=r0c0") == 1  # one line for three seeds, not three
    assert ("! v/p  mean [tile=r0c0 ch=Y] @ x 8-24, y 8-24  pass → fail in 2/3 seeds, pass → pass in 1/3  "
            "B−A +0.9 [+0.3..+1.5]  × tol 0.20 → 3.00") in text


def test_both_directions_swap_newly_failing_and_newly_fixed(ab):
    a, b = ab
    fwd, back = diff_reports(a, b), diff_reports(b, a)
    assert [len(fwd.sections[s]) for s in ("newly_failing", "newly_fixed")] == [1, 0]
    assert [len(back.sections[s]) for s in ("newly_failing", "newly_fixed")] == [0, 1]
    [fixed] = back.sections["newly_fixed"]
    assert fixed.status == "fail → pass in 2/3 seeds, pass → pass in 1/3"
    assert not back.failed
    text = format_diff(back)
    # the fixed row is shown, never an unchanged one first; the verdict says nothing regressed
    assert text.index("newly failing: none") < text.index("newly fixed: 1 check(s)")
    assert "  v/p  mean [tile=r0c0 ch=Y]" in text and "mean [all]" not in text
    assert text.splitlines()[-1].startswith("0 regression(s): 0 check(s) newly failing in 0 vector × pipeline(s); "
                                            "1 newly fixed")


def test_still_failing_and_moved_within_tolerance(tmp_path):
    a = run(tmp_path / "a", values={1: 2.0, 2: 1.1})
    b = run(tmp_path / "b", values={1: 3.0, 2: 1.3})  # s1 fails worse; s2 moves but passes
    res = diff_reports(a, b)
    [still] = res.sections["still_failing"]
    assert still.status == "fail → fail in 1/2 seeds, pass → pass in 1/2"
    assert not res.sections["moved"] and not res.failed  # one row: its worst seed decides the section
    c = run(tmp_path / "c", values={1: 2.0, 2: 1.4})
    res = diff_reports(a, c)
    assert [r.section for r in res.sections["moved"]] == [] and res.sections["still_failing"][0].change[2] == \
        pytest.approx(0.3)


def test_moved_within_tolerance_is_largest_first_and_capped(tmp_path):
    def two(path, v1, v2):
        path.mkdir()
        c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {},
                       [Check("m", "tile=r0c0", v1, 1.0, v1 - 1, 1.0, "pass"),
                        Check("m", "tile=r0c1", v2, 1.0, v2 - 1, 1.0, "pass")])
        write_part(path, c)
        compact(path, [c.id])
        Report(path.name, "s", "t", {}, [c], complete=True, planned=[c.id]).write(path)
        return path

    a, b = two(tmp_path / "a", 1.0, 1.0), two(tmp_path / "b", 1.2, 1.7)
    res = diff_reports(a, b)
    assert [r.slice for r in res.sections["moved"]] == ["tile=r0c1", "tile=r0c0"]
    capped = diff_reports(a, b, moved_cap=1)
    assert [r.slice for r in capped.sections["moved"]] == ["tile=r0c1"] and capped.counts["moved"] == 2
    assert not res.failed


def test_config_difference_at_the_top(ab):
    res = diff_reports(*ab)
    assert res.config.pipeline == [("mask.dilate_px 2 → 6", ["v/p"])]
    assert res.config.environment == [("git_sha", "a" * 40, "b" * 40), ("versions.numpy", "2.0", "2.1")]
    assert res.config.same == ["device cpu", "threads 1", "executor local", "suite_digest d1"]
    assert res.units[0].config == ["mask.dilate_px 2 → 6"]
    assert res.units[0].first_image_change == "mask_mask"  # the first artifact whose bytes differ A vs B
    lines = format_diff(res).splitlines()
    assert lines[1] == f"environment: git_sha {'a' * 40} → {'b' * 40}; versions.numpy 2.0 → 2.1; same: device cpu, " \
                       "threads 1, executor local, suite_digest d1"
    assert lines[2:4] == ["pipeline config A → B:", "  mask.dilate_px 2 → 6  in 1 vector × pipeline(s): v/p"]
    assert diff_reports(ab[1], ab[0]).config.pipeline == [("mask.dilate_px 6 → 2", ["v/p"])]


def test_diverged_is_shown_per_unit(tmp_path):
    d = {"stage": "mask", "note": "", "reference": "sha256:" + "0" * 64, "candidate": "sha256:" + "1" * 64,
         "mean_abs": 0.031, "max_abs": 0.82, "changed_fraction": 0.125, "box": [10, 4, 90, 60]}
    a = run(tmp_path / "a", values={1: 1.0})
    b = run(tmp_path / "b", values={1: 2.0}, diverged=d)
    u = diff_reports(a, b).units[0]
    assert u.diverged_b == "first diverging stage: mask (mean |Δ| 3.1 %, max 0.82, 12.5 % of pixels in [10, 4, 90, 60]) (s1)"
    assert u.diverged_a == ""


def test_diff_json_and_md(ab, tmp_path):
    res = diff_reports(*ab)
    pj, pm = write_diff_text(res, tmp_path / "d")
    doc = json.loads(pj.read_text())
    assert doc["format"] == "harness-diff/1" and doc["failed"] is True
    assert doc["pipeline"] == [{"change": "mask.dilate_px 2 → 6", "units": ["v/p"]}]
    [row] = doc["rows"]
    assert (row["section"], row["regressed"], row["seeds"], row["newly_failing"], row["box"]) == \
        ("newly_failing", True, 3, 2, list(BOX))
    assert [s["seed"] for s in row["per_seed"]] == [1, 2, 3]
    assert row["change"] == {"median": pytest.approx(0.9), "min": pytest.approx(0.3), "max": pytest.approx(1.5)}
    assert doc["units"][0]["cases"] == [{"seed": 1, "a": "pass", "b": "fail"}, {"seed": 2, "a": "pass", "b": "fail"},
                                        {"seed": 3, "a": "pass", "b": "pass"}]
    md = pm.read_text()
    assert "| v/p | mean | tile=r0c0 ch=Y | x 8-24, y 8-24 | pass → fail in 2/3 seeds, pass → pass in 1/3 |" in md
    assert md == diff_markdown(res) and diff_doc(res)["counts"]["newly_failing"] == 1


def test_html_has_escaped_text_and_the_a_b_difference_images(tmp_path):
    from PIL import Image

    nasty = "<script>alert(1)</script>"
    a = run(tmp_path / "a", values={1: 1.0, 2: 1.0})
    b = run(tmp_path / "b", values={1: 1.2, 2: 3.0}, env={"executor": nasty})
    res = diff_reports(a, b)
    page, images = write_diff_html(res, tmp_path / "d")
    html = page.read_text()
    assert nasty not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    [entry] = images["v/p"]  # mask_mask does not differ here: only the measured image
    assert (entry["stage"], entry["seed"], entry["note"]) == ("output", 2, "")  # seed 2 is the worst
    for key in ("a", "b", "difference"):
        assert f'src="{entry[key]}"' in html
        assert Image.open(tmp_path / "d" / entry[key]).size == (32, 32)
    diff = Image.open(tmp_path / "d" / entry["difference"]).convert("RGB")
    assert diff.getpixel((16, 16))[0] > 200 and diff.getpixel((2, 2)) == (0, 0, 0)  # the damage shows; the rest not
    assert Image.open(tmp_path / "d" / entry["b"]).convert("RGB").getpixel((8, 8)) == (230, 20, 20)  # box drawn


def test_missing_images_are_named_not_a_crash(tmp_path):
    a = run(tmp_path / "a", values={1: 1.0})
    b = run(tmp_path / "b", values={1: 3.0})
    (b / "cases" / "v__p__s1" / "output.png").unlink()
    res = diff_reports(a, b)
    page, images = write_diff_html(res, tmp_path / "d")
    [entry] = images["v/p"]
    assert entry["a"] and entry["b"] is None and entry["difference"] is None
    assert entry["note"] == "B: cases/v__p__s1/output.png not found (a pruned store object or a moved run?)"
    assert entry["note"] in page.read_text()
    c = run(tmp_path / "c", values={1: 3.0}, images=False)
    [entry] = write_diff_html(diff_reports(a, c), tmp_path / "e")[1]["v/p"]
    assert entry["note"] == "B: no 'output' artifact recorded"


def _one_check_run(path, *, complete: bool, value: float = 1.0):
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, [Check("m", "all", value, 1.0, value - 1, 1.0, "pass")])
    planned = ["v/p/s1"] if complete else ["v/p/s1", "v/p/s2"]  # a complete run recorded all it planned
    write_part(path, c)  # as RunFolder.add and .finish do: the checks, compacted, then report.json
    compact(path, [c.id])
    Report(path.name, "smoke", "t", {}, [c], complete=complete, planned=planned).write(path)
    return path


@pytest.mark.parametrize("a_done,b_done,which", [(True, False, ["REPORT_B"]), (False, True, ["REPORT_A"]),
                                                  (False, False, ["REPORT_A", "REPORT_B"]), (True, True, [])])
def test_an_incomplete_side_fails_the_diff(tmp_path, a_done, b_done, which):
    a = _one_check_run(tmp_path / "a", complete=a_done)
    b = _one_check_run(tmp_path / "b", complete=b_done)
    res = diff_reports(a, b)
    assert [line.split()[0] for line in res.incomplete] == which
    assert res.failed is bool(which) and not res.regressions
    text = format_diff(res)
    for label in which:
        assert f"! {label} " in text and "is INCOMPLETE: 1 of 2 planned cases have results" in text


def test_diff_json_names_the_incomplete_report(tmp_path):
    res = diff_reports(_one_check_run(tmp_path / "a", complete=True),
                       _one_check_run(tmp_path / "b", complete=False, value=1.5))
    write_diff_text(res, tmp_path / "d")
    doc = json.loads((tmp_path / "d" / "diff.json").read_text())
    assert doc["incomplete"][0].startswith(f"REPORT_B {tmp_path / 'b'} (run b) is INCOMPLETE")
    assert doc["rows"][0]["per_seed"][0]["value_b"] == 1.5  # what changed among the recorded cases is still listed


def test_diff_reads_every_check_from_checks_parquet_not_only_the_deciding_ones(tmp_path):
    """Seven passing checks: report.json keeps the 5 worst; the diff still sees the 2 others move."""
    def one(path, shift):
        checks = [Check("m", f"tile=r0c{i}", 1.0 + shift * (i == 0), 1.0, shift * (i == 0), 1.0 + i, "pass")
                  for i in range(7)]
        c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, checks)
        write_part(path, c)
        compact(path, [c.id])
        Report(path.name, "smoke", "t", {}, [c], complete=True, planned=[c.id]).write(path)
        return path

    a, b = one(tmp_path / "a", 0.0), one(tmp_path / "b", 0.5)
    assert len(json.loads((b / "report.json").read_text())["cases"][0]["checks"]) == 5
    res = diff_reports(a, b)
    assert [(r.slice, r.seeds[0].value_a, r.seeds[0].value_b) for r in res.sections["moved"]] == \
        [("tile=r0c0", 1.0, 1.5)]
    (b / "checks.parquet").unlink()
    with pytest.raises(InputError, match=r"b/checks.parquet: the checks of 1 case\(s\) are missing or unreadable: "
                                         r"v/p/s1 \(0 of 7\)"):
        diff_reports(a, b)


def test_an_errored_case_without_checks_is_a_regression_with_its_error(tmp_path):
    a = run(tmp_path / "a", values={1: 1.0})
    b = tmp_path / "b"
    b.mkdir()
    c = CaseResult("v/p/s1", "v", "p", 1, "error", "inpaint: CUDA out of memory\nTraceback ...", {}, {}, [])
    write_part(b, c)
    compact(b, [c.id])
    Report("b", "smoke", "t", {}, [c], complete=True, planned=[c.id]).write(b)
    res = diff_reports(a, b)
    [u] = res.units
    assert (u.status, u.error_b, u.worst_seed) == ("pass → error in 1/1 seeds", "inpaint: CUDA out of memory", 1)
    assert res.failed and not res.sections["newly_failing"]  # A's checks are absent in B: no check newly fails
    assert "! v/p  pass → error in 1/1 seeds  (B error: inpaint: CUDA out of memory)" in format_diff(res)
    assert not diff_reports(b, a).failed  # error → pass is a fix


def test_a_vector_new_in_b_shows_b_and_says_a_has_no_case(tmp_path):
    a = run(tmp_path / "a", values={1: 1.0})
    b = run(tmp_path / "b", values={1: 3.0}, vector="w")  # B ran vector w only, and it fails
    res = diff_reports(a, b)
    assert [(u.unit, u.status) for u in res.units] == [("w/p", "absent → fail in 1/1 seeds"),
                                                       ("v/p", "pass → absent in 1/1 seeds")]
    assert res.failed and [r.status for r in res.sections["newly_failing"]] == ["absent → fail in 1/1 seeds"]
    # the passing checks one run lacks are counted, never shown as moves
    assert (res.counts["only_in_a"], res.counts["only_in_b"], res.counts["moved"]) == (2, 1, 0)
    assert "0 moved within tolerance, 2 only in A, 1 only in B, 0 unchanged" in format_diff(res)
    [entry] = write_diff_html(res, tmp_path / "d")[1]["w/p"]
    assert entry["a"] is None and entry["b"] == "images/w__p__s1-output-b.png"
    assert entry["note"] == "A: no case w/p/s1 in this run"
