"""A distribution baseline's own false-alarm rate: the hue test's calibration and power at its level,
the bake-time self-check on held-out seeds (recorded in the baseline, reported by every run against
it), the seed count it names, and ``python -m harness.run.power`` refusing to measure without
the real backends."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.comparing.distribution import FAMILY_SHARE, compare_distribution
from harness.run.power import rotate_hue
from harness.comparing.seedtests import hue_spectra, hue_t, mc_critical, permuted_hue_t, relabellings
from harness.comparing.selfcheck import (_fa, bake_seed_lists, baseline_seeds_needed, recorded_check,
                                         self_check)
from harness.measuring.driver import measure
from harness.measuring.metrics.color import HUE_BINS
from harness.comparing.settings import DistributionConfig

ROOT = Path(__file__).resolve().parents[2]
HUE_ALPHA = DistributionConfig().alpha * FAMILY_SHARE["hue"]  # 0.02: the hue check's level


# -- the studentised pooled hue rotation, on synthetic seeds whose answer is known ----------------

def _hists(rng, n, shift=0.0):
    """``n`` seeds' hue histograms: a skin-like peak whose centre varies by 6° per seed (a face
    GAN's pooled rotation varies by ~8°) plus a background peak anywhere, each seed's mass set by its chroma."""
    deg = (np.arange(HUE_BINS) + 0.5) * 360.0 / HUE_BINS
    out = []
    for _ in range(n):
        c1, c2 = 30.0 + rng.normal(0, 6) + shift, rng.uniform(0, 360) + shift
        d1 = (deg - c1 + 180) % 360 - 180
        d2 = (deg - c2 + 180) % 360 - 180
        h = np.exp(-0.5 * (d1 / 12) ** 2) + 0.2 * np.exp(-0.5 * (d2 / 20) ** 2)
        out.append(h * rng.uniform(5, 30) / h.sum())
    return np.array(out)


def _hue_fails(hb, hc, perms):
    nb = len(hb)
    sp = hue_spectra(np.concatenate([hb, hc]))
    obs = np.zeros((1, len(sp)))
    obs[0, nb:] = 1.0
    rot, se, _ = (float(v[0]) for v in hue_t(sp, obs, nb))
    return abs(rot) > mc_critical(permuted_hue_t(sp, perms, nb), HUE_ALPHA) * se


def test_the_hue_test_holds_its_level_and_sees_6_degrees_at_32_candidate_seeds():
    """Fresh baseline and candidate sets of one model (64 + 32 seeds): the false-alarm rate of the
    studentised permutation test is its level (2 %); every candidate rotated by 6° is caught in
    >= 95 % of draws."""
    rng = np.random.default_rng(7)
    perms = relabellings(64, 32, 300)
    fa = sum(_hue_fails(_hists(rng, 64), _hists(rng, 32), perms) for _ in range(150))
    assert fa <= 8, fa  # binomial(150, 0.02): mean 3, sd 1.7
    det = sum(_hue_fails(_hists(rng, 64), _hists(rng, 32, shift=6.0), perms) for _ in range(40))
    assert det >= 38, det


def test_the_rotations_standard_error_counts_both_sides_sampling_error():
    """The sandwich SE of the pooled rotation is the spread of the rotation over fresh baseline *and*
    candidate sets (96 + 32 seeds): var(rotation) = E[SE^2] within the simulation's error, so the
    baseline is not treated as the truth; with the baseline held fixed, the spread is the
    candidate side's alone, smaller."""
    rng = np.random.default_rng(3)
    obs = np.zeros((1, 128))
    obs[0, 96:] = 1.0

    def draw(hb):
        rot, se, _ = hue_t(hue_spectra(np.concatenate([hb, _hists(rng, 32)])), obs, 96)
        return float(rot[0]), float(se[0])

    fresh = np.array([draw(_hists(rng, 96)) for _ in range(300)])
    ratio = fresh[:, 0].var() / np.mean(fresh[:, 1] ** 2)
    assert 0.8 < ratio < 1.25, ratio
    fixed = _hists(rng, 96)
    held = np.array([draw(fixed) for _ in range(300)])
    assert held[:, 0].var() < 0.9 * fresh[:, 0].var()


def test_a_fixed_baseline_sways_the_nightly_rate_and_more_baked_seeds_bring_it_back():
    """Conditional on one baked set, the rate over fresh candidate sets depends on how far that set
    sits from the model's mean: a baseline 2.5 of its standard errors off (8° per seed) fails in more
    than a quarter of nights at 32 seeds; as rare a baseline of 256 seeds is a third as far off in
    degrees and fails in under 10 %; an exact baseline fails at the test's level."""
    assert _fa(32, 8.0, 2.17, 32, 0.9876) > 0.25  # |offset| 2.5 SE of a 32-seed baseline
    assert _fa(256, 8.0, 2.17, 32, 0.9876) < 0.10  # 2.5 SE of 256 seeds: a third of the degrees
    assert _fa(1e9, 8.0, 2.17, 32, 0.5) == pytest.approx(2 * (1 - 0.98500), abs=1e-3)  # exact baseline: the level


# -- the self-check -------------------------------------------------------------------------------

def _images(n, offset=0, hue=0.0):
    """``n`` seeds of a synthetic "model": a scene with a per-seed colour cast of ~8° of hue."""
    base = np.clip(np.random.default_rng(0).normal([160, 110, 90], 25, (48, 48, 3)), 0, 255)
    out = []
    for i in range(n):
        r = np.random.default_rng(offset + 1000 + i)
        img = np.clip(base + r.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        out.append(measure(rotate_hue(img, hue + r.normal(0, 8))))
    return out


@pytest.fixture(scope="module")
def seeds():
    return {"baked": _images(24), "held": _images(24, offset=500), "off": _images(24, offset=900, hue=12.0)}


def test_a_self_check_of_a_baseline_of_the_same_model_expects_few_false_alarms(seeds):
    dist = DistributionConfig(selfcheck_draws=10)
    sc = self_check(seeds["baked"], seeds["held"], 12, dist, n_perm=300)
    assert (sc.draws, sc.held_out, sc.baseline_seeds, sc.run_seeds) == (10, 24, 24, 12)
    assert sc.rate <= 0.2 and sc.ok == (sc.rate <= 0.1)
    rec = sc.record()
    assert set(rec) == {"false_alarm_rate", "draws", "held_out", "baseline_seeds", "run_seeds", "max_false_alarm",
                        "failing", "seeds_needed"}
    assert json.loads(json.dumps(rec)) == rec


def test_a_baseline_off_the_model_is_flagged_with_the_checks_that_fail(seeds):
    """Baked seeds 12° off the model that renders the held-out ones: every draw fails on the hue
    rotation; the line says so; no baseline size fixes an offset that is not sampling error, but the
    named count follows the normal model (more than the 24 baked)."""
    sc = self_check(seeds["off"], seeds["held"], 12, DistributionConfig(selfcheck_draws=6), n_perm=300)
    assert sc.rate == 1.0 and not sc.ok
    assert sc.failing.get("hue [pooled rotation]") == 6
    assert "ABOVE 10%" in sc.summary() and "hue [pooled rotation] 6" in sc.summary()
    assert sc.seeds_needed is None or sc.seeds_needed >= 2


def test_the_named_seed_count_is_the_smallest_that_reaches_the_target():
    se, crit, nb, nc = 2.0, 2.0, 32, 32
    need = baseline_seeds_needed([(se, crit, 0.0)], nb, nc, 0.10)
    sigma = se / math.sqrt(1 / nb + 1 / nc)
    assert need > nb and _fa(need, sigma, crit, nc, 0.9) <= 0.10 < _fa(need - 1, sigma, crit, nc, 0.9)
    # a larger baseline of the same model: that size is already enough in 9 bakes of 10 (unlucky draw)
    assert baseline_seeds_needed([(se * math.sqrt(1 / 128 + 1 / 32) / math.sqrt(2 / 32), crit)], 128, nc, 0.10) == 128
    # a critical value too small for the target at 32 candidate seeds: no baseline size reaches it
    assert baseline_seeds_needed([(se, 1.2, 0.0)], nb, nc, 0.10) is None


def test_bake_seed_lists_extend_the_suites_seeds_then_hold_out_the_next():
    assert bake_seed_lists([3, 1, 2], 6, 4) == ([3, 1, 2, 4, 5, 6], [7, 8, 9, 10])
    assert bake_seed_lists([1, 2], None, None) == ([1, 2], [3, 4, 5, 6])
    assert bake_seed_lists([5, 9], 2, 0) == ([5, 9], [])


def test_the_recorded_rate_becomes_a_check_of_every_run():
    rec = {"false_alarm_rate": 0.15, "draws": 50, "held_out": 64, "baseline_seeds": 64, "run_seeds": 32,
           "max_false_alarm": 0.1, "failing": {"hue [pooled rotation]": 7}, "seeds_needed": 210}
    c = recorded_check([rec, rec], 64, 32, DistributionConfig())
    assert (c.metric, c.status, c.value, c.baseline) == ("selfcheck", "fail", 0.15, 0.1)
    from harness.report.text import format_check
    assert format_check(c) == ("fail selfcheck [expected false alarms 15.0% of runs > 10%, needs 210 baked seeds]: "
                               "0.15 vs baseline 0.1 (delta 0.05, tolerance 0)")
    assert c.slice == "expected false alarms 15.0% of runs > 10%, needs 210 baked seeds"
    unlucky = recorded_check([dict(rec, seeds_needed=48)], 64, 32, DistributionConfig())
    assert unlucky.slice == "expected false alarms 15.0% of runs > 10%, re-bake from other seeds"
    noted = recorded_check([rec], 64, 16, DistributionConfig(require_power=False))
    assert noted.status == "pass" and "checked for runs of 32 seeds, this run has 16" in noted.note
    fine = recorded_check([dict(rec, false_alarm_rate=0.02)], 64, 32, DistributionConfig())
    assert fine.status == "pass" and fine.slice == "expected false alarms 2.0% of runs"
    assert recorded_check([None, {}], 64, 32, DistributionConfig()) is None
    part = recorded_check([rec, None], 64, 32, DistributionConfig())
    assert (part.status, part.slice) == ("fail", "unchecked: 1 of 2 baked seeds carry a self-check, or theirs differ")


def test_judge_group_reports_the_baselines_self_check(tmp_path, seeds):
    from harness.errors import BaselineError
    from harness.suite.baselines import BaselineStore
    from harness.run.case import CaseOutput
    from harness.run.judge import judge_group

    rec = {"false_alarm_rate": 0.3, "draws": 20, "held_out": 16, "baseline_seeds": 8, "run_seeds": 6,
           "max_false_alarm": 0.1, "failing": {"hue [pooled rotation]": 6}, "seeds_needed": 90}
    store = BaselineStore("mini", tmp_path / "baselines")
    store.bake([(f"v/p/s{i + 1}", {"measurement": m.to_dict(), "stages": {}, "environment": {}, "pipeline": {},
                                   "selfcheck": rec}) for i, m in enumerate(seeds["baked"][:8])])
    assert store.load("v/p/s3").selfcheck == rec
    cases = [SimpleNamespace(vector="v", pipeline=SimpleNamespace(name="p"), seed=s, id=f"v/p/s{s}")
             for s in range(101, 107)]
    outs = [CaseOutput(c.id, m.to_dict(), {}, {}, {}, {}) for c, m in zip(cases, seeds["held"][:6])]
    suite = SimpleNamespace(ref="mini", path="mini.toml", distribution=DistributionConfig(require_power=False))
    status, _, checks = judge_group(cases, outs, store, None, suite)
    sc = [c for c in checks if c.metric == "selfcheck"]
    assert len(sc) == 1 and sc[0].status == "pass" and sc[0].slice.startswith("expected false alarms 30.0%")
    gating = SimpleNamespace(ref="mini", path="mini.toml", distribution=DistributionConfig())
    assert judge_group(cases, outs, store, None, gating)[0] == "fail"
    # a malformed record is a corrupt baseline, never a silent pass
    p = store.path_for("v/p/s1")
    doc = json.loads(p.read_text())
    doc["selfcheck"] = {"false_alarm_rate": "low"}
    store.bake([("v/p/s1", doc)])
    with pytest.raises(BaselineError, match=r"s1\.json: corrupt baseline \(selfcheck is not a record"):
        store.load("v/p/s1")


# -- `harness bake` of a distribution suite ------------------------------------------------------

SUITE = '''
name = "dist"
seeds = [1, 2, 3, 4]
vectors = ["caption_portrait"]
mode = "distribution"

[distribution]
require_power = false
baseline_seeds = 6
selfcheck_seeds = 6
selfcheck_draws = 5

[pipelines.p]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''


def test_bake_stores_baseline_seeds_records_its_self_check_and_every_run_reports_it(tmp_path, capsys, monkeypatch):
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "dist.toml"
    suite.write_text(SUITE)
    common = ["--suite", str(suite), "--baselines", str(tmp_path / "b"), "--cache", str(tmp_path / "c")]
    assert main(["bake", *common]) == 0
    out = "".join(capsys.readouterr())
    assert "selfcheck caption_portrait/p: expected false alarms" in out and "(5 draws of 4 from 6 held-out seeds " \
        "against 6 baked)" in out
    group = tmp_path / "b" / "dist" / "caption_portrait" / "p"
    assert sorted(p.name for p in group.iterdir()) == [f"s{i}.json" for i in range(1, 7)]  # 7..12 held out
    recs = [json.loads((group / f"s{i}.json").read_text())["selfcheck"] for i in range(1, 7)]
    assert all(r == recs[0] for r in recs) and (recs[0]["baseline_seeds"], recs[0]["held_out"]) == (6, 6)
    assert main(["run", *common, "--out", str(tmp_path / "r2")]) in (0, 1)
    run = max((tmp_path / "r2").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    report = json.loads((run / "report.json").read_text())
    g = next(c for c in report["cases"] if c["seed"] is None)
    from harness.report.checks_table import read_checks

    sc = read_checks(run, ["value", "note"], [("case", "=", g["id"]), ("metric", "=", "selfcheck")]).to_pylist()
    assert len(sc) == 1 and sc[0]["value"] == recs[0]["false_alarm_rate"]
    assert sc[0]["note"].startswith("bake-time self-check: 5 draws of 4 held-out seeds (6 rendered, not stored) "
                                    "against the 6 baked")
    assert not [n for n in report["notes"] if "obsolete baseline" in n]  # s5, s6 belong to the suite
    capsys.readouterr()
    assert main(["bake", *common, "--from-report", str(run)]) == 0
    assert "selfcheck: not made (--from-report: only a bake that runs the suite renders held-out seeds)" in \
        "".join(capsys.readouterr())
    assert main(["run", *common, "--out", str(tmp_path / "r3")]) == 0  # require_power = false: noted
    run = max((tmp_path / "r3").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    g = next(c for c in json.loads((run / "report.json").read_text())["cases"] if c["seed"] is None)
    rows = read_checks(run, ["slice", "status"], [("case", "=", g["id"]), ("metric", "=", "selfcheck")]).to_pylist()
    # the group did not move, so that bake rewrote none of its seeds: every one keeps the self-check
    assert rows == [{"slice": f"expected false alarms {100 * recs[0]['false_alarm_rate']:.1f}% of runs",
                     "status": "pass"}]
    capsys.readouterr()
    assert main(["bake", *common, "--from-report", str(run), "--force", "--reason", "drop the self-check"]) == 0
    assert main(["run", *common, "--out", str(tmp_path / "r4")]) == 0
    run = max((tmp_path / "r4").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    g = next(c for c in json.loads((run / "report.json").read_text())["cases"] if c["seed"] is None)
    rows = read_checks(run, ["slice", "status"], [("case", "=", g["id"]), ("metric", "=", "selfcheck")]).to_pylist()
    assert rows == [{"slice": "unchecked: 2 of 6 baked seeds carry a self-check, or theirs differ", "status": "pass"}]


# -- the measurement command ---------------------------------------------------------------------

def test_power_fails_in_one_line_when_a_generator_cannot_render(tmp_path):
    """A `gan_face_generate` without its weight file (shadowing the installed one): exit 2, one line
    naming the model -- never a measurement of something else."""
    fake = tmp_path / "gan_face_generate"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    p = subprocess.run([sys.executable, "-m", "harness.run.power", "--generators", "digiface", "--pool", "8"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "python -m harness.run.power: face_gan model 'digiface' cannot render: "), lines
    assert "pools:" in p.stdout and "rendered and measured" not in p.stdout


def test_the_nightly_verdict_excuses_only_a_baseline_its_self_check_flagged():
    from harness.run.power_nightly import _verdict

    def row(b, fa, sc_rate, need):
        return {"baseline": b, "false_alarm_rate": fa, "detected": 19, "reps": 20,
                "selfcheck": {"false_alarm_rate": sc_rate, "max_false_alarm": 0.1, "seeds_needed": need}}

    ok = _verdict([row(0, 0.0, 0.0, None), row(1, 0.15, 0.2, 120), *(row(i, 0.0, 0.0, None) for i in range(2, 5))])
    assert ok["ok"] and ok["unflagged_over_max"] == [] and ok["mean_false_alarm"] == pytest.approx(0.03)
    bad = _verdict([row(0, 0.0, 0.0, None), row(1, 0.15, 0.05, None), *(row(i, 0.0, 0.0, None) for i in range(2, 5))])
    assert not bad["ok"] and bad["unflagged_over_max"] == [1]
    blind = _verdict([dict(row(0, 0.0, 0.0, None), detected=18)])
    assert not blind["ok"] and blind["detect_rate"] == 0.9


def test_the_distribution_table_reads_the_baseline_keys_and_refuses_a_baseline_smaller_than_a_run(tmp_path):
    from harness.errors import ConfigError
    from harness.suite.suites import load_suite

    p = tmp_path / "dist.toml"
    p.write_text(SUITE.replace("baseline_seeds = 6", "baseline_seeds = 6\nmax_false_alarm = 0.05"))
    s = load_suite(p)
    d = s.distribution
    assert (d.baseline_seeds, d.selfcheck_seeds, d.selfcheck_draws, d.max_false_alarm) == (6, 6, 5, 0.05)
    assert s.baseline_ids() == {f"caption_portrait/p/s{i}" for i in range(1, 7)}
    p.write_text(SUITE.replace("baseline_seeds = 6", "baseline_seeds = 3"))
    with pytest.raises(ConfigError, match=r"distribution\.baseline_seeds: expected an integer >= the suite's 4 seeds"):
        load_suite(p)
    p.write_text(SUITE.replace("selfcheck_draws = 5", "selfcheck_draws = 0"))
    with pytest.raises(ConfigError, match=r"distribution\.selfcheck_draws: expected an integer"):
        load_suite(p)
