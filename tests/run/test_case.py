"""harness.run.case: absolute checks end to end.

A baseline that blesses a broken stage still fails the case; a stage that did nothing (a rejected
mask, an empty detection, a skipped or no-op inpaint) is a failing ``stage_effect`` check unless the
vector expects it; and the shipped smoke suite runs every stage it names on every case.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from harness.comparing.engine import CompareConfig
from harness.suite.baselines import BaselineStore
from harness.run.cache import StageCache
from harness.run.case import execute_case
from harness.run.judge import judge_case, judge_expectations, judge_group
from harness.run.runner import run_suite
from harness.suite.suites import load_suite
from harness.suite.vectors import load_vector

ABSOLUTE = ("expect", "stage_effect")

SUITE = '''
name = "{name}"
seeds = [1]
vectors = ["microprint_dilation"]

[pipelines.p]
detect = {{ backend = "{detect}" }}
mask = {{ backend = "shape", dilate_px = {dilate}, protect_anchors = {protect}, max_coverage = {max_coverage} }}
inpaint = {{ backend = "{inpaint}" }}
denoise = {{ backend = "{denoise}", strength = {strength} }}
upscale = {{ backend = "lanczos", scale = 2 }}
'''


def make_suite(tmp_path, name="mini", detect="ground_truth", dilate=2, protect="true", max_coverage=0.12,
               inpaint="telea", denoise="nlmeans", strength=0.45, vector=None):
    p = tmp_path / f"{name}.toml"
    p.write_text(SUITE.format(name=name, detect=detect, dilate=dilate, protect=protect, max_coverage=max_coverage,
                              inpaint=inpaint, denoise=denoise, strength=strength))
    suite = load_suite(p)
    if vector is not None:  # a hand-written vector in place of the shipped one
        suite = dataclasses.replace(suite, vectors=(vector.id,), vector_defs=(vector,))
    return suite


def absolute(checks):
    return {c.slice: c for c in checks if c.metric in ABSOLUTE}


def failing(checks):
    return sorted(c.slice for c in checks if c.metric in ABSOLUTE and c.status == "fail")


def execute(suite, tmp_path):
    [case] = suite.cases()
    out = execute_case(case, suite, tmp_path / "run", StageCache(None))
    assert out.error is None, out.error
    return out


# --- a baseline cannot bless a broken stage -------------------------------------------------------------------------

def test_a_baseline_baked_from_a_broken_pipeline_matches_but_the_expectations_fail(tmp_path):
    """Dilation 12 with anchor protection off erases the microprint; baked, the rerun matches its
    baseline slice for slice, and the absolute checks still fail the case in every view."""
    from harness.report.checks_table import read_checks
    from harness.report.schema import read_case_record

    suite = make_suite(tmp_path, dilate=12, protect="false", max_coverage=0.5)
    report, run_dir = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "baselines",
                                judge=False, run_id="bake")
    entries = []
    for case in report.cases:
        _, measurement = read_case_record(run_dir / "cases" / f"{case.id.replace('/', '__')}.json")
        entries.append((case.id, {"measurement": measurement, "stages": case.stages, "environment": {},
                                  "pipeline": {}}))
    BaselineStore(suite.name, tmp_path / "baselines").bake(entries)

    report, run_dir = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "baselines",
                                run_id="again")
    [case] = report.cases
    compared = [c for c in case.checks if c.metric not in ABSOLUTE]
    assert compared and all(c.status in ("pass", "skip") for c in compared)  # the baseline blesses it
    assert case.status == "fail"
    assert failing(case.checks) == ["anchors_survive anchor=0 band=high+top", "min_anchor_gap_px anchor=0"]
    keep = absolute(case.checks)["anchors_survive anchor=0 band=high+top"]
    assert keep.value < 0.4 and keep.baseline == 1.0 and -keep.delta > keep.tolerance
    gap = absolute(case.checks)["min_anchor_gap_px anchor=0"]
    assert (gap.value, gap.baseline) == (0.0, 1.0)
    assert case.error.startswith("expectation failed: the fill region overlaps anchor 0 (microprint) (0 px) < "
                                 "min_anchor_gap_px 1; anchor 0 (microprint) keeps ")
    # every view: report.json (with the note), checks.parquet
    doc = json.loads((run_dir / "report.json").read_text())
    [row] = [c for c in doc["cases"][0]["checks"] if c["slice"] == "anchors_survive anchor=0 band=high+top"]
    assert row["metric"] == "expect" and row["status"] == "fail" and "keeps" in row["note"]
    [row] = read_checks(run_dir, ["metric", "slice", "status", "note"],
                        [("slice", "=", "anchors_survive anchor=0 band=high+top")]).to_pylist()
    assert row["metric"] == "expect" and row["status"] == "fail" and "keeps" in row["note"]


def test_the_same_run_with_a_healthy_mask_passes_its_expectations(tmp_path):
    out = execute(make_suite(tmp_path), tmp_path)
    assert failing(out.expectations) == []
    got = absolute(out.expectations)
    assert got["min_anchor_gap_px anchor=0"].value == 2.0  # 2 px dilation of a text 3 px above the microprint
    assert got["anchors_survive anchor=0 band=high+top"].value > 0.8


# --- a stage that did nothing is never a plain pass -----------------------------------------------------------------

def test_a_mask_rejected_by_the_coverage_gate_fails_mask_and_inpaint(tmp_path):
    out = execute(make_suite(tmp_path, max_coverage=0.01), tmp_path)
    assert out.stages["mask.rejected"] == 1.0 and out.stages["inpaint.skipped"] == 1.0
    assert failing(out.expectations) == ["stage=inpaint effect=skipped", "stage=mask effect=rejected"]
    got = absolute(out.expectations)
    assert got["stage=inpaint effect=skipped"].note == \
        "inpaint did not run: the mask was rejected (coverage 0.030 > max_coverage 0.01)"
    status, error, checks = judge_case(out, BaselineStore("mini", tmp_path / "none"), CompareConfig(), make_suite(
        tmp_path), {}, set())
    assert status == "fail" and checks == out.expectations
    assert error.startswith("no baseline for microprint_dilation/p/s1: create it with ")
    assert error.endswith("; expectation failed: mask (shape) rejected the mask (coverage 0.030 > max_coverage "
                          "0.01); inpaint did not run: the mask was rejected (coverage 0.030 > max_coverage 0.01)")


def test_a_rejection_the_vector_expects_is_a_passing_check_that_names_it(tmp_path):
    v = load_vector(_vector_file(tmp_path, "mask_rejected = true"))
    out = execute(make_suite(tmp_path, max_coverage=0.01, vector=v), tmp_path)
    assert failing(out.expectations) == []
    got = absolute(out.expectations)
    assert got["stage=mask effect=rejected"].status == "pass"
    assert got["stage=inpaint effect=skipped"].note.endswith(", as the vector expects (mask_rejected = true)")
    assert got["mask_rejected stage=mask"].status == "pass"
    # and when the gate lets it through, the expectation fails
    out = execute(make_suite(tmp_path, vector=v), tmp_path)
    assert failing(out.expectations) == ["mask_rejected stage=mask"]


def test_an_empty_detection_fails_detect_and_the_stages_after_it(tmp_path, monkeypatch):
    (tmp_path / "nothing_found.py").write_text(textwrap.dedent('''
        import numpy as np

        def detect(image, ctx):
            return np.zeros(image.shape[:2], np.float32)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = execute(make_suite(tmp_path, detect="nothing_found:detect"), tmp_path)
    assert failing(out.expectations) == ["min_detect_recall stage=detect", "stage=detect effect=nothing",
                                         "stage=inpaint effect=skipped", "stage=mask effect=empty"]
    got = absolute(out.expectations)
    assert got["stage=detect effect=nothing"].note == \
        "detect (nothing_found:detect) found nothing: the overlay (771 px) was not found"
    assert got["stage=inpaint effect=skipped"].note == "inpaint did not run: the mask was rejected (empty mask)"
    assert got["min_detect_recall stage=detect"].note == "detect recall 0.000 < min_detect_recall 0.9"


def test_stages_that_return_their_input_unchanged_fail(tmp_path, monkeypatch):
    (tmp_path / "noop.py").write_text(textwrap.dedent('''
        def inpaint(image, ctx):
            return image.copy()

        def denoise(image, ctx, strength=0.45):
            return image.copy()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = execute(make_suite(tmp_path, inpaint="noop:inpaint", denoise="noop:denoise"), tmp_path)
    assert failing(out.expectations) == ["stage=denoise effect=unchanged", "stage=inpaint effect=unchanged"]
    got = absolute(out.expectations)
    assert got["stage=inpaint effect=unchanged"].note == \
        "inpaint (noop:inpaint) left all 1991 px of the fill region unchanged"
    assert got["stage=denoise effect=unchanged"].note == \
        "denoise (noop:denoise, strength 0.45) returned its input unchanged"
    # strength 0 is off by configuration, and says so
    out = execute(make_suite(tmp_path, strength=0), tmp_path)
    assert failing(out.expectations) == [] and "stage=denoise effect=off" in absolute(out.expectations)


def test_distribution_groups_and_seeds_carry_the_absolute_checks(tmp_path):
    suite = make_suite(tmp_path, max_coverage=0.01)
    cases = [dataclasses.replace(suite.cases()[0], seed=s) for s in (1, 2)]
    outs = [execute_case(c, suite, tmp_path / "run", StageCache(None)) for c in cases]
    status, error, checks = judge_group(cases, outs, BaselineStore("mini", tmp_path / "none"), CompareConfig(), suite)
    assert status == "fail" and error.startswith("distribution mode needs >= 2 baseline seeds")
    assert "stage=inpaint effect=skipped seed=2" in {c.slice for c in checks}
    status, error, checks = judge_expectations(outs[0])
    assert status == "fail" and failing(checks) == ["stage=inpaint effect=skipped", "stage=mask effect=rejected"]
    assert error.startswith("expectation failed: mask (shape) rejected the mask")


def _vector_file(tmp_path, extra_expect: str):
    """microprint_dilation with more [expect] keys, as a file of its own."""
    from harness.project import builtin_dir

    text = (builtin_dir("vectors") / "microprint_dilation.toml").read_text()
    text = text.replace("[expect]\n", f"[expect]\n{extra_expect}\n")
    p = tmp_path / "vectors" / "microprint_dilation.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


# --- the smoke suite runs every stage it names ----------------------------------------------------------------------

def test_the_smoke_suite_exercises_every_stage_on_every_case(tmp_path):
    """Seed 1 of every smoke case (no baselines: only the absolute checks matter here)."""
    suite = load_suite("smoke")
    from harness.report.checks_table import checks_of, read_checks

    report, run_dir = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "baselines",
                                seeds=[1])
    assert [c.id for c in report.cases] == [c.id for c in suite.cases(seeds=[1])]
    assert len(report.cases) >= 10 and {c.vector for c in report.cases} == set(suite.vectors)
    table = read_checks(run_dir, ["case", "metric", "slice", "value", "baseline", "delta", "tolerance", "status"],
                        [("metric", "in", list(ABSOLUTE))])  # every absolute check, not only the deciding ones
    absolute = {}
    for cid, c in zip(table.column("case").to_pylist(), checks_of(table)):
        absolute.setdefault(cid, []).append(c)
    for case in report.cases:
        checks = absolute[case.id]
        vector = suite.vector(case.vector)
        named = [s.stage for s in next(p for p in suite.pipelines if p.name == case.pipeline).stages]
        st = case.stages
        assert st["detect.recall"] >= vector.expect.get("min_detect_recall", 0.5), case.id
        assert st["mask.rejected"] == 0.0 and "inpaint.skipped" not in st and st["inpaint.filled_px"] > 0, case.id
        effects = {c.slice.split()[0]: c for c in checks if c.metric == "stage_effect"}
        assert list(effects) == [f"stage={s}" for s in named], case.id
        assert all(c.status == "pass" for c in checks), (case.id, [c.slice for c in checks if c.status == "fail"])
        kinds = {c.slice.split()[0] for c in checks if c.metric == "expect"}
        assert {"min_detect_recall", "max_mask_coverage"} <= kinds, case.id
        assert ("anchors_survive" in kinds) == bool(vector.expect.get("anchors_survive")), case.id
    assert {c.pipeline for c in report.cases} == {"classic", "ocr_patchmatch", "diffusion", "faces"}
    ocr = [c for c in report.cases if c.pipeline == "ocr_patchmatch"]
    assert all(c.config["pipeline"]["inpaint"]["backend"] == "patchmatch" for c in ocr)


@pytest.mark.parametrize("vid", ["watermark_grass", "receipt_microprint"])
def test_the_two_vectors_patchmatch_never_ran_on_now_reach_it(vid):
    """The OCR detector finds the (60 %, bold) watermark, and leaves the receipt's microprint alone
    so the receipt's mask passes the coverage gate."""
    from harness.stages import StageContext, build_backend, run_stage
    from harness.suite.vectors import render

    suite = load_suite("smoke")
    spec = {s.stage: s for s in next(p for p in suite.pipelines if p.name == "ocr_patchmatch").stages}
    v = suite.vector(vid)
    r = render(v)
    det = run_stage(build_backend("detect", "rapidocr", dict(spec["detect"].params)), r.image,
                    StageContext(seed=1, truth_mask=r.overlay_mask))
    assert det.info["recall"] >= v.expect["min_detect_recall"]
    mask = run_stage(build_backend("mask", "shape", dict(spec["mask"].params)), r.image,
                     StageContext(seed=1, mask=det.mask, anchors=r.anchors))
    assert "rejected" not in mask.info and mask.info["coverage"] <= v.max_mask_coverage
    assert not np.any((mask.mask >= 0.5) & r.anchors)
