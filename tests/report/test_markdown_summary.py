"""summary.md as a GitHub step summary: what changed, the failing cases worst first with their
diverging stage, worst checks (boxes) and image links, and at most 1 MB whatever the run's size."""

from __future__ import annotations

import numpy as np

from harness.comparing.engine import Check
from harness.naming import case_slug
from harness.report.markdown import MAX_BYTES, summary_markdown
from harness.report.schema import CaseResult, Report
from harness.run.store import ImageStore

CHANGE = [{"stage": "mask", "param": "dilate_px", "baseline": 2, "run": 6}]


def _failing(i: int, sev: float) -> CaseResult:
    checks = [Check("band_power", f"band=high tile=r{i % 40}c{j} region=ring ch=Y", 10.0, 20.0, -sev * (j + 1), 1.0,
                    "fail", box=(64 * j, 32, 64 * j + 64, 96)) for j in range(4)]
    diverged = {"stage": "inpaint", "note": "x", "mean_abs": 0.031, "max_abs": 0.82, "changed_fraction": 0.125,
                "box": [10, 4, 90, 60], "reference": None, "candidate": None}
    return CaseResult(f"vector_with_a_long_name_{i:05d}/pipeline_name/s{i % 7}", f"vector_with_a_long_name_{i:05d}",
                      "pipeline_name", i % 7, "fail", None, {}, {}, checks, changed=CHANGE, diverged=diverged,
                      n_checks=5000, n_failed=40)


def test_five_thousand_failing_cases_stay_under_one_megabyte():
    cases = [_failing(i, 1.0 + (i * 7919 % 5000) / 100) for i in range(5000)]
    cases += [CaseResult(f"ok_{i}/p/s1", f"ok_{i}", "p", 1, "pass") for i in range(500)]
    notes = [f"note {i}: " + "y" * 5000 for i in range(80)]
    report = Report("run1", "nightly", "2026-01-01", {}, cases, complete=True, notes=notes)
    md = summary_markdown(report)
    assert len(md.encode()) <= MAX_BYTES == 1_000_000
    assert "**FAIL** — 500 passed, 5000 failed, 0 errors, 0 skipped (5500 cases)" in md
    assert "**What changed since the baselines:** `mask.dilate_px 2 → 6` in 5000 cases (fail)" in md
    assert "## Failing cases (5000, worst first)" in md and md.count("\n### `") == 25
    assert "… and 4975 more failing cases: [index.html](index.html) and report.json list them all." in md
    assert "| … 5200 more cases | | | see [index.html](index.html) or report.json |" in md  # 300 rows shown
    assert "- … 30 more notes in report.json" in md and "y" * 1000 not in md
    # worst first: the case whose worst check is furthest beyond its tolerance leads
    worst = max(cases[:5000], key=lambda c: max(ch.severity for ch in c.checks))
    first = md.split("\n### ", 1)[1]
    assert first.startswith(f"`{worst.id}` — fail, 40 of 5000 checks failed")
    assert ("- **diverged:** first diverging stage: inpaint (mean |Δ| 3.1 %, max 0.82, 12.5 % of pixels in "
            "[10, 4, 90, 60])") in first
    top = max(worst.checks, key=lambda c: c.severity)
    assert f"  - `fail band_power [{top.slice}] @ x 192-256, y 32-96: 10 vs baseline 20 (delta {top.delta:.4g}, " \
        in first
    assert "  - … 37 more failing checks: [index.html](index.html)" in first


def test_an_oversized_summary_is_cut_at_a_line_and_says_so():
    cases = [_failing(i, 2.0) for i in range(40)]
    md = summary_markdown(Report("run1", "s", "2026-01-01", {}, cases, complete=True), max_bytes=4000)
    assert len(md.encode()) <= 4000
    assert md.rstrip().endswith("lines to stay under 4000 bytes: see index.html and report.json")
    assert md.startswith("# harness run `run1` — suite `s`\n")


def test_failing_case_links_its_record_and_images_relative_to_the_run(tmp_path):
    store = ImageStore(tmp_path / "store")
    refs = {name: store.put(np.full((8, 8, 3), v, np.uint8)) for v, name in enumerate(("input", "inpaint", "output"))}
    reference = store.put(np.full((8, 8, 3), 9, np.uint8))
    gone = "sha256:" + "0" * 64  # pruned: not linked
    run = tmp_path / "runs" / "run1"
    (run / "cases").mkdir(parents=True)
    case = CaseResult("v/p/s1", "v", "p", 1, "fail", None, {}, {**refs, "denoise": gone},
                      [Check("contrast", "tile=r1c1 ch=Y", 9.0, 4.0, 5.0, 1.0, "fail", box=(0, 0, 4, 4))],
                      changed=CHANGE, diverged={"stage": "inpaint", "note": "n", "reference": reference,
                                                "candidate": refs["inpaint"], "mean_abs": 0.004, "max_abs": 0.004,
                                                "changed_fraction": 1.0, "box": [0, 0, 8, 8]})
    (run / "cases" / f"{case_slug(case.id)}.json").write_text("{}")
    report = Report("run1", "s", "2026-01-01", {"store": str(tmp_path / "store")}, [case], complete=True)
    md = summary_markdown(report, run)

    def href(ref):
        return "../../store/objects/" + ref[7:9] + "/" + ref[9:] + ".png"

    assert (f"- **images:** [input]({href(refs['input'])}) · **[inpaint]({href(refs['inpaint'])})** · "
            f"**[reference inpaint]({href(reference)})** · [output]({href(refs['output'])})\n") in md
    assert "- **changed:** `mask.dilate_px 2 → 6`" in md
    assert "  - `fail contrast [tile=r1c1 ch=Y] @ x 0-4, y 0-4: 9 vs baseline 4 (delta 5, tolerance 1)` — 5.0× tolerance" \
        in md
    assert "[index.html](index.html) · [report.json](report.json)" in md
    # without the run folder there is nothing to resolve images against: no image links
    assert "**images:**" not in summary_markdown(report)
