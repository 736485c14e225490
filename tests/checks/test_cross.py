"""Cross-model checks ([[cross]]): analytic image pairs, then small suites run end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness.run.power import rotate_hue
from harness.checks.cross import Side, cross_checks, judge_cross, plan_cross
from harness.suite.suites import CrossCheck, load_suite
from harness.run.store import is_ref, resolve_artifact

CC = CrossCheck("a", "b")


# ==========================================================================================
# analytic pairs
# ==========================================================================================
def colourful(h=96, w=96, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([120 + 60 * np.sin(xx / 7.0), 100 + 40 * np.cos(yy / 5.0), 60 + 20 * np.sin((xx + yy) / 9)], -1)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def grating(w=64, k=38):
    """A grey DCT-II grating cos(pi k (x + 1/2) / w): mirror extension keeps it one frequency, k/(2w)."""
    xx = np.mgrid[0:w, 0:w][1]
    return np.repeat((128 + 60 * np.cos(np.pi * k * (xx + 0.5) / w))[..., None], 3, -1)


def blur3(img):
    """[1/4, 1/2, 1/4] along x, symmetric edges: amplitude response cos²(pi f)."""
    p = np.pad(img.astype(np.float64), ((0, 0), (1, 1), (0, 0)), mode="symmetric")
    return 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]


def by_metric(checks):
    return {c.metric: c for c in checks}


def test_a_15_degree_hue_rotation_is_measured_and_fails_at_10():
    img = colourful()
    got = by_metric(cross_checks(img, rotate_hue(img, 15.0), CC)[0])
    hue = got["cross_hue"]
    assert hue.delta == pytest.approx(15.0, abs=0.3) and hue.status == "fail" and hue.tolerance == 10.0
    assert hue.value - hue.baseline == pytest.approx(hue.delta, abs=1e-9)  # value/baseline: the hues of b/a
    assert hue.slice == "generate a=a b=b"
    assert got["cross_hf_energy"].status == "pass"  # the luma is untouched
    back = by_metric(cross_checks(img, rotate_hue(img, -15.0), CrossCheck("a", "b", max_hue_deg=20.0))[0])
    assert back["cross_hue"].delta == pytest.approx(-15.0, abs=0.3) and back["cross_hue"].status == "pass"


def test_the_hue_offset_wraps_around_the_circle():
    img = colourful()
    hue = by_metric(cross_checks(img, rotate_hue(img, 170.0), CrossCheck("a", "b", max_hue_deg=180.0))[0])
    rot = by_metric(cross_checks(img, rotate_hue(img, -170.0), CrossCheck("a", "b", max_hue_deg=180.0))[0])
    assert abs(hue["cross_hue"].delta) <= 180 and abs(rot["cross_hue"].delta) <= 180
    assert hue["cross_hue"].delta * rot["cross_hue"].delta < 0  # not both +190 or both -190


def test_a_blurred_copy_loses_the_known_share_of_high_frequency_energy():
    k, w = 38, 64
    a = grating(w, k)
    expected = np.cos(np.pi * k / (2 * w)) ** 4 - 1  # |H|^4 - 1 at the grating's frequency: -0.874
    got = by_metric(cross_checks(np.rint(a).astype(np.uint8), np.rint(blur3(a)).astype(np.uint8), CC)[0])
    hf = got["cross_hf_energy"]
    assert hf.delta == pytest.approx(expected, abs=2e-3) and hf.status == "fail" and hf.tolerance == 0.25
    assert hf.value / hf.baseline - 1 == pytest.approx(hf.delta)
    assert hf.slice == "generate a=a b=b band=high+top ch=Y"
    # a grey image has no hue: a clear skip, not an angle made of noise
    assert (got["cross_hue"].status, got["cross_hue"].delta) == ("skip", None)


def test_identical_images_pass_with_zero_deltas():
    img = colourful()
    checks, info = cross_checks(img, img.copy(), CC)
    assert [(c.status, c.delta) for c in checks] == [("pass", 0.0), ("pass", 0.0)]
    assert info["chroma_a"] == info["chroma_b"] > 2.0


def test_flat_grey_images_are_undefined_on_both_checks():
    rng = np.random.default_rng(1)
    a = np.full((64, 64, 3), 128, np.uint8)
    b = np.clip(a + rng.integers(-1, 2, a.shape), 0, 255).astype(np.uint8)  # +-1 LSB of noise
    assert [c.status for c in cross_checks(a, b, CC)[0]] == ["skip", "skip"]


def test_images_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="differ in size"):
        cross_checks(colourful(64, 64), colourful(64, 96), CC)


def upsampled(img, factor):
    from PIL import Image

    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((w * factor, h * factor), Image.Resampling.LANCZOS))


def test_a_softer_model_at_a_low_native_resolution_fails_on_hf_energy():
    native = colourful(64, 64, seed=3)
    soft = np.clip(np.rint(blur3(blur3(native.transpose(1, 0, 2)).transpose(1, 0, 2))), 0, 255).astype(np.uint8)
    a, b = upsampled(native, 4), upsampled(soft, 4)
    # the soft side has no cliff to find (it is smooth), yet both are measured at the sharp side's scale
    for x, y, sign in ((a, b, -1), (b, a, 1)):
        checks, info = cross_checks(x, y, CC)
        hf = by_metric(checks)["cross_hf_energy"]
        assert info["hf_scale"] == 4 and hf.status == "fail" and sign * hf.delta > 0.25
    # a sharp 256 px image against a 64 px one resized: measured at full resolution, b lost it all
    sharp = upsampled(colourful(64, 64, seed=4), 4)
    sharp = np.clip(sharp.astype(int) + np.random.default_rng(4).integers(-20, 21, sharp.shape), 0, 255)
    checks, info = cross_checks(sharp.astype(np.uint8), a, CC)
    assert info["hf_scale"] == 1 and by_metric(checks)["cross_hf_energy"].delta < -0.9


# ==========================================================================================
# one entry from its sides
# ==========================================================================================
SUITE = '''
name = "xm"
seeds = [1]
vectors = ["generated_texture", "caption_portrait"]

[pipelines.m0]
generate = {{ backend = "tiny_diffusion", model_seed = 0 }}

[pipelines.m0b]
generate = {{ backend = "tiny_diffusion", model_seed = 0 }}

[pipelines.m1]
generate = {{ backend = "tiny_diffusion", model_seed = 1 }}
{extra}
[[cross]]
a = "m0"
b = "m0b"

[[cross]]
a = "m0"
b = "m1"
'''


def write_suite(tmp_path, extra=""):
    p = tmp_path / "xm.toml"
    p.write_text(SUITE.format(extra=extra))
    return p


@pytest.fixture()
def suite(tmp_path):
    return load_suite(write_suite(tmp_path))


def pair_of(suite, cc_index=1, vector="generated_texture"):
    pairs, _ = plan_cross(suite, suite.cases())
    return next(p for p in pairs if p.check == suite.cross[cc_index] and p.vector == vector)


def test_plan_pairs_every_vector_and_seed_and_notes_one_sided_selections(suite):
    pairs, notes = plan_cross(suite, suite.cases())
    assert [p.id for p in pairs] == ["generated_texture/m0+m0b/s1", "caption_portrait/m0+m0b/s1",
                                     "generated_texture/m0+m1/s1", "caption_portrait/m0+m1/s1"]
    assert notes == [] and pairs[0].pipeline == "m0+m0b" and pairs[0].seed == 1
    pairs, notes = plan_cross(suite, suite.cases(k_expr="generated_texture and not m0b"))
    assert [p.id for p in pairs] == ["generated_texture/m0+m1/s1"]
    assert notes == ["cross generated_texture/m0+m0b/s1 not run: the selection has only its side 'm0' "
                     "(-k selected one pipeline of the pair)"]


def side(case_id, error=None, **artifacts):
    return Side(case_id, error, artifacts, {"generate.generated": 1.0} if "generate" in artifacts else {})


def test_a_missing_or_errored_side_is_an_error_never_a_pass(suite, tmp_path):
    pair = pair_of(suite)
    ok = side(pair.b.id, generate="x.png")
    cr = judge_cross(pair, tmp_path, None, ok)
    assert (cr.status, cr.id, cr.pipeline, cr.seed) == ("error", pair.id, "m0+m1", 1)
    assert "side a (generated_texture/m0/s1) has no result" in cr.error
    cr = judge_cross(pair, tmp_path, side(pair.a.id, "StageError: boom"), ok)
    assert cr.status == "error" and "errored: StageError: boom" in cr.error
    cr = judge_cross(pair, tmp_path, side(pair.a.id, generate="gone.png"), ok)
    assert cr.status == "error" and "cannot compare gone.png with x.png" in cr.error


def test_sides_that_generated_nothing_skip_and_one_that_did_not_is_an_error(suite, tmp_path):
    pair = pair_of(suite, vector="caption_portrait")
    passed_through = Side(pair.a.id, None, {"generate": "g.png", "output": "o.png"}, {"generate.generated": 0.0})
    cr = judge_cross(pair, tmp_path, passed_through, passed_through)
    assert cr.status == "skip" and "neither 'm0' nor 'm1' generated an image" in cr.error and not cr.checks
    cr = judge_cross(pair, tmp_path, side(pair.a.id, generate="g.png"), passed_through)
    assert cr.status == "error" and "side b (caption_portrait/m1/s1) made no image at stage generate" in cr.error


def test_a_side_by_store_reference_is_resolved_and_kept_as_its_reference(suite, tmp_path):
    from functools import partial

    from harness.run.store import ImageStore

    pair = pair_of(suite)
    store = ImageStore(tmp_path / "store")
    img = colourful()
    ref_a, ref_b = store.put(img), store.put(rotate_hue(img, 30))
    a = Side(pair.a.id, None, {"generate": ref_a}, {"generate.generated": 1.0}, tmp_path / "scratch")
    resolve = partial(resolve_artifact, store_root=store.root)
    cr = judge_cross(pair, tmp_path / "run", a, side(pair.b.id, generate=ref_b), resolve=resolve)
    assert cr.status == "fail" and cr.artifacts == {"a": ref_a, "b": ref_b}  # nothing copied
    assert not (tmp_path / "run").exists()
    store.path(ref_b).unlink()  # a pruned object: that entry errors, naming it
    cr = judge_cross(pair, tmp_path / "run", a, side(pair.b.id, generate=ref_b), resolve=resolve)
    assert cr.status == "error" and f"side b's image {ref_b} is not there" in cr.error


def test_a_side_from_a_scratch_folder_is_copied_into_the_entry(suite, tmp_path):
    from harness.imageio import save_png

    pair = pair_of(suite)
    scratch, run_dir = tmp_path / "scratch", tmp_path / "run"
    img = colourful()
    save_png(scratch / "a.png", img)
    save_png(run_dir / "artifacts" / "b.png", rotate_hue(img, 30))
    a = Side(pair.a.id, None, {"generate": "a.png"}, {"generate.generated": 1.0}, scratch)
    cr = judge_cross(pair, run_dir, a, side(pair.b.id, generate="artifacts/b.png"))
    assert cr.status == "fail" and cr.artifacts == {"a": "artifacts/generated_texture__m0+m1__s1/a.png",
                                                    "b": "artifacts/b.png"}
    assert (run_dir / cr.artifacts["a"]).is_file()
    assert [c.metric for c in cr.checks if c.status == "fail"] == ["cross_hue"]
    assert cr.config["cross"]["case_b"] == "generated_texture/m1/s1" and cr.config["measured"]["hf_scale"] >= 1


# ==========================================================================================
# harness run / bake end to end (tiny_diffusion: two model seeds, offline)
# ==========================================================================================
def harness(*args):
    from harness.cli import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    """xm's side baselines, baked from a first run (whose cross entries bake ignores)."""
    tmp = tmp_path_factory.mktemp("xm")
    path = write_suite(tmp)
    assert harness("run", "--suite", path, "--baselines", tmp / "none", "--out", tmp / "r0",
                   "--cache", tmp / "cache") == 1  # no baselines yet
    first = only(tmp / "r0")
    assert sum("+" in c["id"] for c in json.loads((first / "report.json").read_text())["cases"]) == 4
    assert harness("bake", "--suite", path, "--from-report", first, "--baselines", tmp / "b") == 0
    baked = sorted(p.relative_to(tmp / "b").as_posix() for p in (tmp / "b").rglob("*.json"))
    assert not any("+" in p for p in baked) and len(baked) == 7  # 6 cases + the manifest
    return tmp, path


def test_an_unjudged_run_plans_no_cross_entry(baked, tmp_path):
    from harness.run.runner import run_suite

    tmp, path = baked
    report, _ = run_suite(load_suite(path), out_root=tmp_path / "r", baselines_root=tmp / "b",
                          cache_dir=tmp / "cache", judge=False)  # what `harness bake` runs
    assert len(report.cases) == 6 and not any("+" in c for c in report.planned)


def only(reports: Path) -> Path:
    [run] = [p for p in reports.iterdir() if p.is_dir()]
    return run


def test_run_records_cross_entries_and_fails_with_the_checks_named(baked, tmp_path):
    tmp, path = baked
    rc = harness("run", "--suite", path, "--baselines", tmp / "b", "--out", tmp_path / "r", "--cache", tmp / "cache")
    assert rc == 1
    run = only(tmp_path / "r")
    doc = json.loads((run / "report.json").read_text())
    cases = {c["id"]: c for c in doc["cases"]}
    assert all(c["status"] == "pass" for c in doc["cases"] if "+" not in c["pipeline"])  # the sides match
    cross = {cid: c for cid, c in cases.items() if "+" in cid}
    assert list(cross) == ["generated_texture/m0+m0b/s1", "caption_portrait/m0+m0b/s1",
                           "generated_texture/m0+m1/s1", "caption_portrait/m0+m1/s1"]
    assert doc["planned"][-4:] == list(cross) and doc["complete"] is True
    same, swap = cross["generated_texture/m0+m0b/s1"], cross["generated_texture/m0+m1/s1"]
    assert same["status"] == "pass" and [c["delta"] for c in same["checks"]] == [0.0, 0.0]
    assert (swap["status"], swap["pipeline"], swap["seed"], swap["vector"]) == ("fail", "m0+m1", 1,
                                                                                "generated_texture")
    hue = {c["metric"]: c for c in swap["checks"]}["cross_hue"]
    assert set(hue) >= {"metric", "slice", "value", "baseline", "delta", "tolerance", "status"}
    assert hue["status"] == "fail" and abs(hue["delta"]) > 10 and hue["slice"] == "generate a=m0 b=m1"
    # the compared images are the sides' own generate images, by reference into the run's image store
    assert swap["artifacts"] == {"a": cases["generated_texture/m0/s1"]["artifacts"]["generate"],
                                 "b": cases["generated_texture/m1/s1"]["artifacts"]["generate"]}
    assert all(is_ref(v) for v in swap["artifacts"].values()) and not (run / "artifacts").exists()
    assert resolve_artifact(swap["artifacts"]["b"], run, doc["environment"]["store"]).stat().st_size > 1000
    assert cross["caption_portrait/m0+m1/s1"]["status"] == "skip"  # its own source: nothing generated
    assert doc["summary"] == {"passed": 7, "failed": 1, "errors": 0, "skipped": 2}
    from harness.report.checks_table import read_checks

    rows = read_checks(run, ["case", "pipeline", "seed", "metric", "stage", "status"],
                       [("case", "=", "generated_texture/m0+m1/s1")]).to_pylist()
    assert {"case": "generated_texture/m0+m1/s1", "pipeline": "m0+m1", "seed": 1, "metric": "cross_hue",
            "stage": None, "status": "fail"} in rows
    md = (run / "summary.md").read_text()
    assert "## Cross-model" in md
    assert "| `generated_texture/m0+m1/s1` | fail | " in md and "° (max 10) |" in md
    assert "| `generated_texture/m0+m0b/s1` | pass | +0.00° (max 10) | +0.0% (max 25%) |" in md
    assert "<h2>Cross-model</h2>" in (run / "index.html").read_text()
    # harness diff sees them as cases
    assert harness("diff", run, run) == 0


def test_a_pair_within_tolerance_passes_and_exits_0(baked, tmp_path):
    tmp, path = baked
    rc = harness("run", "--suite", path, "--baselines", tmp / "b", "--out", tmp_path / "r", "--cache", tmp / "cache",
                 "-k", "generated_texture and not m1")
    assert rc == 0
    doc = json.loads((only(tmp_path / "r") / "report.json").read_text())
    assert [c["id"] for c in doc["cases"] if "+" in c["id"]] == ["generated_texture/m0+m0b/s1"]
    assert doc["notes"] == ["cross generated_texture/m0+m1/s1 not run: the selection has only its side 'm0' "
                            "(-k selected one pipeline of the pair)"]


def test_k_with_one_side_notes_the_skipped_entry(baked, tmp_path):
    tmp, path = baked
    from harness.run.runner import run_suite

    report, _ = run_suite(load_suite(path), out_root=tmp_path / "r", baselines_root=tmp / "b",
                          cache_dir=tmp / "cache", k_expr="generated_texture and m1")
    assert [c.id for c in report.cases] == ["generated_texture/m1/s1"] and report.exit_code == 0
    assert report.notes == ["cross generated_texture/m0+m1/s1 not run: the selection has only its side 'm1' "
                            "(-k selected one pipeline of the pair)"]


def test_an_interrupted_run_resumes_its_missing_cross_entries(baked, tmp_path):
    tmp, path = baked
    from harness.run.runner import run_suite
    from harness.report.schema import load_report

    def stop_at_cross(line):
        if line.startswith("[cross]"):
            raise KeyboardInterrupt

    suite = load_suite(path)
    kw = {"out_root": tmp_path / "r", "baselines_root": tmp / "b", "cache_dir": tmp / "cache"}
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, run_id="cut", progress=stop_at_cross, **kw)
    cut = tmp_path / "r" / "cut"
    partial = load_report(cut)
    assert not partial.complete and [c.id for c in partial.cases if "+" in c.id] == ["generated_texture/m0+m0b/s1"]
    lines = []
    report, _ = run_suite(suite, resume=cut, progress=lines.append, **kw)
    assert report.complete and [ln.split()[2] for ln in lines if ln.startswith("[cross]")] == [
        "caption_portrait/m0+m0b/s1", "generated_texture/m0+m1/s1", "caption_portrait/m0+m1/s1"]
    assert report.summary == {"passed": 7, "failed": 1, "errors": 0, "skipped": 2}


def test_an_errored_side_makes_its_cross_entry_an_error(tmp_path):
    path = write_suite(tmp_path, extra='\n[pipelines.broken]\ngenerate = { backend = "source" }\n'
                                       '\n[[cross]]\na = "m0"\nb = "broken"\nstage = "output"\n')
    from harness.run.runner import run_suite

    report, _ = run_suite(load_suite(path), out_root=tmp_path / "r", baselines_root=tmp_path / "b",
                          k_expr="generated_texture and (m0 or broken) and not m0b")
    by_id = {c.id: c for c in report.cases}
    assert by_id["generated_texture/broken/s1"].status == "error"  # a prompt vector needs a generating backend
    cr = by_id["generated_texture/m0+broken/s1"]
    assert cr.status == "error" and cr.error.startswith("side b (generated_texture/broken/s1) errored: ConfigError")
