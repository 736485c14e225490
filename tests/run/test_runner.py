"""End-to-end runs of small suites (fast: 2 vectors, 1-2 seeds, classical backends)."""

import json

import numpy as np
import pytest

from harness.suite.baselines import BaselineStore
from harness.errors import ConfigError
from harness.run.runner import run_suite
from harness.suite.suites import load_suite
from mini_suite import mini_suite_text


def make_suite(tmp_path, dilate=2, protect="true", denoise="nlmeans", denoise_params=", strength = 0.45", seeds=None):
    text = mini_suite_text(dilate, protect, denoise, denoise_params, seeds)
    p = tmp_path / "mini.toml"
    p.write_text(text)
    return load_suite(p)


def run(suite, tmp_path, **kw):
    from harness.project import load_project

    project = load_project().with_overrides(store=tmp_path / "store")  # not the checkout's .harness-store
    return run_suite(suite, project=project, out_root=tmp_path / "reports", baselines_root=tmp_path / "baselines",
                     **kw)


def bake(run_dir, tmp_path, suite, pipeline=None):
    from harness.report.schema import load_report, read_case_record

    store = BaselineStore(suite.name, tmp_path / "baselines")
    entries = []
    for case in load_report(run_dir).cases:
        _, measurement = read_case_record(run_dir / "cases" / f"{case.id.replace('/', '__')}.json")
        entries.append((case.id, {"measurement": measurement, "stages": case.stages, "environment": {},
                                  "pipeline": pipeline or {}}))
    return store.bake(entries)


def all_checks(run_dir, case_id):
    """Every check of one case, by (metric, slice): one filtered read of the run's checks.parquet."""
    from harness.report.checks_table import checks_of, read_checks

    table = read_checks(run_dir, ["metric", "slice", "value", "baseline", "delta", "tolerance", "status"],
                        [("case", "=", case_id)])
    return {(c.metric, c.slice): c for c in checks_of(table)}


@pytest.fixture()
def baked(tmp_path):
    suite = make_suite(tmp_path)
    report, run_dir = run(suite, tmp_path, run_id="first")
    bake(run_dir, tmp_path, suite)
    return suite, report, run_dir


def test_missing_baselines_fail_with_the_command_that_creates_them(tmp_path):
    suite = make_suite(tmp_path)
    report, run_dir = run(suite, tmp_path)
    assert report.summary == {"passed": 0, "failed": 2, "errors": 0, "skipped": 0}
    assert "harness bake --suite" in report.cases[0].error and "-k 'microprint_dilation/base/s1'" in report.cases[0].error


def test_report_contract_artifacts_and_checks_parquet(baked, tmp_path):
    import pyarrow.parquet as pq

    report, run_dir = run(baked[0], tmp_path)  # compared with the baselines: ~1,000 checks a case
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["schema_version"] == 2 and doc["complete"] is True and doc["checks_file"] == "checks.parquet"
    assert set(doc) >= {"schema_version", "run_id", "suite", "created", "environment", "summary", "cases"}
    assert doc["environment"]["threads"] == 1 and "numpy" in doc["environment"]["versions"]
    case = doc["cases"][0]
    assert set(case) >= {"id", "vector", "pipeline", "seed", "status", "error", "timings", "artifacts", "checks",
                         "changed", "n_checks", "n_failed"}
    assert set(case["timings"]) >= {"detect", "mask", "inpaint", "denoise", "upscale", "measure"}
    from harness.run.store import ImageStore, is_ref, resolve_artifact

    store = ImageStore(doc["environment"]["store"])  # stage images: references into the image store
    for ref in case["artifacts"].values():
        assert is_ref(ref) and resolve_artifact(ref, run_dir, store.root) == store.path(ref)
    assert not (run_dir / "artifacts").exists()
    # every check in checks.parquet (the per-case parts compacted away); report.json keeps the deciding ones
    table = pq.read_table(run_dir / "checks.parquet")
    assert table.num_rows == sum(c["n_checks"] for c in doc["cases"]) > 100 * len(doc["cases"])
    assert len(case["checks"]) == case["n_failed"] + 5 and case["changed"] == []
    assert list((run_dir / "checks").iterdir()) == [] and not (run_dir / "checks.csv").exists()
    assert (run_dir / "report.json").stat().st_size < 20_000  # ~1,000 checks a case in checks.parquet only


def test_rerun_against_baked_baselines_passes(baked, tmp_path):
    suite, _, _ = baked
    report, _ = run(suite, tmp_path)
    assert report.status == "pass" and len(report.cases) == 2
    assert all(c.n_checks > 500 and len(c.checks) == 5 and c.n_failed == 0 for c in report.cases)


def test_changed_names_the_parameters_that_differ_from_the_baselines_pipeline(tmp_path):
    suite = make_suite(tmp_path)
    _, first = run(suite, tmp_path, run_id="first")
    report, _ = run(suite, tmp_path)
    assert all(c.changed == [] for c in report.cases)  # no baseline: nothing to compare with
    baked = {"mask": {"backend": "shape", "dilate_px": 5, "protect_anchors": True}, "deblur": {"backend": "x"}}
    bake(first, tmp_path, suite, pipeline=baked)
    report, run_dir = run(suite, tmp_path)
    doc = json.loads((run_dir / "report.json").read_text())
    changed = doc["cases"][0]["changed"]
    assert {"stage": "mask", "param": "dilate_px", "baseline": 5, "run": 2} in changed
    assert {"stage": "deblur", "param": "backend", "baseline": "x", "run": None} in changed
    assert {"stage": "denoise", "param": "strength", "baseline": None, "run": 0.45} in changed
    assert not any(c["param"] in ("backend", "protect_anchors") and c["stage"] == "mask" for c in changed)
    assert report.cases[0].changed == changed


def test_mask_dilation_that_erases_microprint_is_caught_while_global_sharpness_stays_flat(baked, tmp_path):
    """The mission's failure story, end to end."""
    bad = make_suite(tmp_path, dilate=12, protect="false")
    report, run_dir = run(bad, tmp_path)
    case = next(c for c in report.cases if c.vector == "microprint_dilation")
    assert case.status == "fail"
    checks = all_checks(run_dir, case.id)
    assert {(c.metric, c.slice) for c in case.checks if c.status == "fail"} == \
        {k for k, c in checks.items() if c.status == "fail"}  # report.json holds every failing check
    assert checks[("band_power", "band=high region=anchor ch=Y")].status == "fail"
    assert checks[("band_power", "band=high region=anchor ch=Y")].delta < 0
    assert checks[("band_power", "band=high ch=Y")].status == "pass"  # the global band is blind to it
    # ... and so is a global sharpness gate: the variance of the Laplacian moves by < 10 %
    from PIL import Image
    from scipy import ndimage

    def sharpness(rep, run_dir):
        from harness.run.store import resolve_artifact

        c = next(c for c in rep.cases if c.id == case.id)
        y = np.asarray(Image.open(resolve_artifact(c.artifacts["output"], run_dir, rep.environment["store"]))
                       .convert("L"), float)
        return ndimage.laplace(y).var()

    good = baked[1]
    assert next(c for c in good.cases if c.id == case.id).artifacts["output"] != case.artifacts["output"]  # two different output images
    assert abs(sharpness(report, run_dir) / sharpness(good, baked[2]) - 1) < 0.10


def test_protected_anchors_turn_the_same_change_into_a_clipping_report(baked, tmp_path):
    report, run_dir = run(make_suite(tmp_path, dilate=12, protect="true"), tmp_path)
    case = next(c for c in report.cases if c.vector == "microprint_dilation")
    checks = all_checks(run_dir, case.id)
    assert checks[("anchor_clipped_px", "all")].status == "fail"
    assert checks[("band_power", "band=high region=anchor ch=Y")].status == "pass"


def test_custom_backend_degrading_fails_equivalent_passes(baked, tmp_path):
    bad, _ = run(make_suite(tmp_path, denoise="custom_backends:degrading_denoise", denoise_params=""), tmp_path)
    assert bad.status == "fail"
    ok, _ = run(make_suite(tmp_path, denoise="custom_backends:equivalent_denoise", denoise_params=", strength = 0.45"),
                tmp_path)
    assert ok.status == "pass", [c.error for c in ok.cases]


def test_one_crashing_case_does_not_stop_the_others(baked, tmp_path):
    report, run_dir = run(make_suite(tmp_path, denoise="custom_backends:exploding_denoise", denoise_params=""),
                          tmp_path)
    by = {c.vector: c for c in report.cases}
    assert by["microprint_dilation"].status == "error" and "model crashed" in by["microprint_dilation"].error
    assert by["caption_portrait"].status in ("pass", "fail")
    assert json.loads((run_dir / "report.json").read_text())["complete"] is True


def test_tampered_baseline_is_a_case_error_naming_the_file(baked, tmp_path):
    suite, _, _ = baked
    p = BaselineStore("mini", tmp_path / "baselines").path_for("caption_portrait/base/s1")
    p.write_text(p.read_text().replace("0", "1", 1))
    report, _ = run(suite, tmp_path)
    case = next(c for c in report.cases if c.vector == "caption_portrait")
    assert case.status == "error" and "s1.json: checksum does not match" in case.error


def test_obsolete_baselines_are_reported_and_respect_k(baked, tmp_path):
    suite = make_suite(tmp_path, seeds="[2]")
    report, _ = run(suite, tmp_path)
    assert sum("obsolete baseline" in n for n in report.notes) == 2
    report, _ = run(suite, tmp_path, k_expr="caption")
    assert len(report.notes) == 1 and "caption_portrait" in report.notes[0]


def test_results_are_flushed_per_case_and_a_crash_keeps_them(tmp_path):
    suite = make_suite(tmp_path)
    seen = []

    def progress(line):
        seen.append(line)
        if len(seen) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path, run_id="crash", progress=progress)
    doc = json.loads((tmp_path / "reports" / "crash" / "report.json").read_text())
    assert doc["complete"] is False and len(doc["cases"]) == 1
    assert len(list((tmp_path / "reports" / "crash" / "cases").glob("*.json"))) == 1


def test_k_that_selects_nothing_and_existing_run_dir_are_errors(baked, tmp_path):
    suite, _, _ = baked
    with pytest.raises(ConfigError, match="selects no case"):
        run(suite, tmp_path, k_expr="nothing_matches")
    with pytest.raises(ConfigError, match="reports are never overwritten"):
        run(suite, tmp_path, run_id="first")


def test_stage_cache_reuses_outputs(tmp_path):
    suite = make_suite(tmp_path)
    r1, d1 = run(suite, tmp_path, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").glob("*.npz"))
    import shutil

    shutil.rmtree(tmp_path / "cache" / "memo")  # the stage cache alone: the case memo would not run the case
    r2, d2 = run(suite, tmp_path, cache_dir=tmp_path / "cache")
    from harness.report.schema import read_case_record

    _, a = read_case_record(d1 / "cases" / "caption_portrait__base__s1.json")
    _, b = read_case_record(d2 / "cases" / "caption_portrait__base__s1.json")
    assert a["metrics"]["band_power"]["values"] == b["metrics"]["band_power"]["values"]
    assert r2.cases[0].timings["upscale"] <= r1.cases[0].timings["upscale"] + 0.05


def test_parallel_workers_give_the_same_results(baked, tmp_path):
    suite, _, _ = baked
    report, _ = run(suite, tmp_path, workers=2)
    assert report.status == "pass"


def test_distribution_mode(tmp_path):
    text = mini_suite_text()
    text = text.replace('seeds = [1]', 'seeds = [1, 2]\nmode = "distribution"').replace(
        '"microprint_dilation", "caption_portrait"', '"caption_portrait"')
    (tmp_path / "mini.toml").write_text(text)
    suite = load_suite(tmp_path / "mini.toml")
    report, run_dir = run(suite, tmp_path)
    group = next(c for c in report.cases if c.seed is None)
    assert group.id == "caption_portrait/base/seeds" and group.status == "fail" and ">= 2 baseline seeds" in group.error
    bake(run_dir, tmp_path, suite)
    report, _ = run(suite, tmp_path)
    assert report.status == "pass" and any(c.seed is None and c.checks for c in report.cases)


def test_environment_drift_is_reported():
    from harness.run.judge import environment_drift

    baked = {"threads": 1, "device": "cpu", "versions": {"numpy": "2.0", "opencv-python-headless": "4.9",
                                                          "harness": "0.1"}}
    now = {"threads": 2, "device": "cpu", "versions": {"numpy": "2.0", "opencv-python-headless": "5.0",
                                                        "harness": "0.2"}}
    assert environment_drift(baked, now) == ["threads 1 -> 2", "opencv-python-headless 4.9 -> 5.0"]
    assert environment_drift(baked, baked) == []


GEN_SUITE = '''
name = "gen"
seeds = [1]
vectors = ["generated_texture"]

[pipelines.g]
{generate}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
'''


def test_prompt_vector_runs_through_the_generate_stage(tmp_path):
    p = tmp_path / "gen.toml"
    p.write_text(GEN_SUITE.format(generate='generate = { backend = "tiny_diffusion", steps = 3 }'))
    suite = load_suite(p)
    report, run_dir = run(suite, tmp_path)
    case = report.cases[0]
    assert case.stages["generate.generated"] == 1.0 and "generate" in case.timings
    assert case.config["stages"][0]["backend"] == "tiny_diffusion"
    bake(run_dir, tmp_path, suite)
    again, _ = run(suite, tmp_path)
    assert again.status == "pass"  # the tiny model is deterministic run to run
    p.write_text(GEN_SUITE.format(generate=""))
    report, _ = run(load_suite(p), tmp_path)
    assert report.cases[0].status == "error"
    assert "needs a generating backend in its generate stage" in report.cases[0].error


def test_report_json_is_written_at_the_start_and_once_at_the_end(tmp_path, monkeypatch):
    """Mid-run, report.json is the header (incomplete, no cases, the planned ids) and the run's
    folder is locked; per-case results go to cases/ and checks/, never into report.json."""
    from harness.report.schema import Report, run_in_progress

    writes = []
    real = Report.write
    monkeypatch.setattr(Report, "write", lambda self, d: writes.append(len(self.cases)) or real(self, d))
    seen = []

    def progress(line):
        if line.startswith("["):
            run_dir = tmp_path / "reports" / "hdr"
            doc = json.loads((run_dir / "report.json").read_text())
            seen.append((doc["complete"], len(doc["cases"]), len(doc["planned"]), run_in_progress(run_dir),
                         len(list((run_dir / "cases").glob("*.json")))))

    suite = make_suite(tmp_path)
    report, run_dir = run(suite, tmp_path, run_id="hdr", progress=progress)
    assert writes == [0, 2]
    assert seen == [(False, 0, 2, True, 1), (False, 0, 2, True, 2)]
    assert report.complete and not run_in_progress(run_dir)
    assert json.loads((run_dir / "report.json").read_text())["planned"] == [c.id for c in report.cases]


def test_resume_records_only_the_missing_cases_and_matches_an_uninterrupted_run(baked, tmp_path):
    suite, _, _ = baked
    seen = []

    def stop_after_one(line):
        seen.append(line)
        if len(seen) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path, run_id="cut", progress=stop_after_one)
    cut = tmp_path / "reports" / "cut"
    before = (cut / "cases" / "microprint_dilation__base__s1.json").stat().st_mtime_ns
    lines = []
    report, run_dir = run(suite, tmp_path, resume=cut, progress=lines.append)
    assert run_dir == cut and report.complete and report.status == "pass"
    assert [ln.split()[0] for ln in lines if ln.startswith("[")] == ["[2/2]"]  # only the missing case ran
    assert (cut / "cases" / "microprint_dilation__base__s1.json").stat().st_mtime_ns == before
    _, again = run(suite, tmp_path)
    from harness.report.schema import load_report

    assert [(c.id, c.status, [x.to_dict() for x in c.checks]) for c in load_report(cut).cases] == \
        [(c.id, c.status, [x.to_dict() for x in c.checks]) for c in load_report(again).cases]
    from harness.report.checks_table import read_checks

    cols = ["case", "metric", "slice", "value", "status"]
    assert read_checks(cut, cols).sort_by("case").equals(read_checks(again, cols).sort_by("case"))
    with pytest.raises(ConfigError, match="the run is complete; nothing to resume"):
        run(suite, tmp_path, resume=cut)


def test_resume_refuses_other_baselines(baked, tmp_path):
    suite, _, _ = baked

    def stop(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path, run_id="cut", progress=stop)
    with pytest.raises(ConfigError, match="it compared with the baselines in .*, not .*other"):
        run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "other", resume=tmp_path / "reports" / "cut")
    bake(tmp_path / "reports" / "first", tmp_path, suite)  # same files: the manifest is unchanged
    p = BaselineStore("mini", tmp_path / "baselines").manifest_path
    p.write_text(p.read_text() + " ")
    with pytest.raises(ConfigError, match="the baselines in .* changed since the run started"):
        run(suite, tmp_path, resume=tmp_path / "reports" / "cut")


def test_suite_timeout_s_is_read_and_checked(tmp_path):
    suite = make_suite(tmp_path)
    assert suite.timeout_s is None
    p = tmp_path / "mini.toml"
    p.write_text("timeout_s = 2.5\n" + p.read_text())
    assert load_suite(p).timeout_s == 2.5
    p.write_text(p.read_text().replace("timeout_s = 2.5", "timeout_s = 0"))
    with pytest.raises(ConfigError, match=r"mini.toml: timeout_s: expected a number > 0, got 0"):
        load_suite(p)


def test_resume_refuses_a_run_another_process_is_writing(tmp_path):
    from harness.run.rundir import RunFolder

    suite = make_suite(tmp_path)

    def stop(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(suite, tmp_path, run_id="cut", progress=stop)
    holder = RunFolder.reopen(tmp_path / "reports" / "cut")  # as a running `harness run` holds it
    try:
        with pytest.raises(ConfigError, match="another harness process is still writing this run"):
            run(suite, tmp_path, resume=tmp_path / "reports" / "cut")
    finally:
        holder.close()
    report, _ = run(suite, tmp_path, resume=tmp_path / "reports" / "cut")
    assert report.complete
