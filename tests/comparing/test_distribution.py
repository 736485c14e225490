"""Distribution mode: two-sample tests over seeds, the pooled hue rotation, power; on known-normal data and
on two trained face GANs (gan-face-generate's digiface, generateme's celeba)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from harness.comparing.distribution import DistributionCheck, compare_distribution
from harness.comparing.engine import Check, summarize_status
from harness.run.power import GENERATIVE_SEEDS, rotate_hue, upscale
from harness.comparing.seedtests import (hue_rotation, hue_spectra, hue_t, max_t, mc_critical, min_detectable,
                                         relabellings, seeds_needed, z_power)
from harness.measuring.driver import measure
from harness.comparing.settings import DistributionConfig
from harness.report.text import format_check

#: What a suite without a [distribution] table gets (alpha 0.01, power 0.8, 6 degrees, 10 %, power required).
SUITE = DistributionConfig()


# -- the statistics, on data whose answer is known ----------------------------------------------------

def test_max_t_false_alarm_rate_is_alpha_on_normal_data():
    """Known-normal columns (different scales, half of them correlated): the family-wise false-alarm
    rate of the permutation max-T test is alpha, within the simulation's error."""
    rng = np.random.default_rng(7)
    alpha, sims, s, n = 0.05, 400, 30, 10
    perms = relabellings(n, n, 400)
    scale = rng.uniform(0.1, 10.0, s)
    hits = 0
    for _ in range(sims):
        x = rng.normal(size=(2 * n, s))
        x[:, s // 2:] += 2.0 * x[:, :1]  # correlated columns: max-T sees the correlation, Bonferroni would not
        r = max_t(x[:n] * scale, x[n:] * scale, alpha, perms=perms)
        hits += bool(np.any(np.abs(r.delta) / r.se > r.crit))
    rate = hits / sims
    assert abs(rate - alpha) < 3.0 * math.sqrt(alpha * (1 - alpha) / sims), rate


def test_too_few_relabellings_fall_back_to_welch_bonferroni_and_stay_below_alpha():
    rng = np.random.default_rng(3)
    alpha, sims = 0.01, 300
    hits = 0
    for _ in range(sims):
        x = rng.normal(size=(8, 5))
        r = max_t(x[:4], x[4:], alpha)  # C(8, 4) = 70 relabellings cannot reach alpha = 0.01
        assert r.method == "welch-bonferroni"
        hits += bool(np.any(np.abs(r.delta) / r.se > r.crit))
    assert hits / sims <= alpha + 2.0 * math.sqrt(alpha / sims)


def test_the_permutation_critical_value_is_exact():
    # 99 relabellings + the observed one: rejecting above the 5th largest (94) leaves at most 4 relabellings
    # at or above a rejected observation, p = (1 + 4) / 100 = alpha
    assert mc_critical(np.arange(99.0), 0.05) == 94.0
    assert mc_critical(np.arange(10.0), 0.05) == math.inf  # 11 labellings cannot reach 0.05
    assert len(relabellings(3, 3)) == 19  # every relabelling but the observed one


def test_min_detectable_shrinks_like_one_over_sqrt_n():
    rng = np.random.default_rng(11)
    se = {}
    for n in (12, 48, 192):
        x = rng.normal(size=(2 * n, 200))
        se[n] = float(np.median(max_t(x[:n], x[n:], 0.01, perms=relabellings(n, n, 200)).se))
    assert se[12] / se[48] == pytest.approx(2.0, rel=0.1) and se[48] / se[192] == pytest.approx(2.0, rel=0.1)
    md = min_detectable(3.0, 0.5, 0.8)
    assert md == pytest.approx((3.0 + z_power(0.8)) * 0.5)
    # extrapolated with SE ~ 1/sqrt(n): half the drift needs four times the seeds (the critical value
    # hardly moves at this many degrees of freedom)
    from scipy import stats

    crit = float(stats.t.ppf(1 - 0.005, 798))
    md = min_detectable(crit, 0.5, 0.8)
    assert seeds_needed(md, 400, 400, md / 2, crit=crit, alpha=0.01) == pytest.approx(1600, rel=0.01)
    assert seeds_needed(md, 400, 400, md, crit=crit, alpha=0.01) <= 400
    assert seeds_needed(md, 400, 400, 0.99 * md, crit=crit, alpha=0.01) > 400  # never "enough" while short
    unequal = seeds_needed(md, 800, 200, md / 2, crit=crit, alpha=0.01)  # n_eq = 320
    assert unequal == pytest.approx(4 * 320, rel=0.01)
    assert seeds_needed(math.inf, 8, 8, 1.0, crit=3.0, alpha=0.01) is None


def test_pooled_hue_rotation_recovers_a_known_rotation():
    rng = np.random.default_rng(5)
    imgs = [np.clip(rng.normal([150, 110, 90], 25, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(6)]
    h0 = np.array([measure(a).meta["hue_hist"] for a in imgs])
    h1 = np.array([measure(rotate_hue(a, 6.0)).meta["hue_hist"] for a in imgs])
    rot = float(hue_rotation(hue_spectra(h0).mean(0), hue_spectra(h1).mean(0)))
    assert rot == pytest.approx(6.0, abs=0.5)
    ind = np.zeros((1, 12))
    ind[0, 6:] = 1
    r, se, _ = hue_t(hue_spectra(np.concatenate([h0, h1])), ind, 6)
    assert r[0] == pytest.approx(rot) and 0 < se[0] < 1.0
    # the histogram is chroma-weighted: its bins add up to the mean chroma
    m = measure(imgs[0])
    assert sum(m.meta["hue_hist"]) == pytest.approx(m.value("chroma", "all"), rel=0.02)


# -- the report contract ---------------------------------------------------------------------------

def _seeds(n, offset=0, hue=0.0):
    """``n`` seeds of one synthetic "model": a fixed scene plus per-seed noise and colour cast."""
    base = np.clip(np.random.default_rng(0).normal([150, 110, 90], 30, (48, 48, 3)), 0, 255)
    out = []
    for i in range(n):
        r = np.random.default_rng(offset + 1000 + i)
        img = np.clip(base + r.normal(0, 6, base.shape) + r.normal(0, 1.5, 3), 0, 255).astype(np.uint8)
        out.append(measure(rotate_hue(img, hue) if hue else img))
    return out


def test_distribution_checks_keep_the_contract_and_carry_their_power():
    base, cand = _seeds(10), _seeds(10, offset=50)
    checks = compare_distribution(base, cand, dist=DistributionConfig(require_power=False))
    assert summarize_status(checks) == "pass"
    hue = next(c for c in checks if c.metric == "hue" and c.slice == "pooled rotation")
    assert isinstance(hue, DistributionCheck) and hue.seeds == (10, 10) and hue.min_detectable > 0
    d = hue.to_dict()
    assert list(d)[:7] == ["metric", "slice", "value", "baseline", "delta", "tolerance", "status"]
    assert d["seeds"] == [10, 10] and d["min_detectable"] == pytest.approx(hue.min_detectable)
    assert d["tolerance"] >= abs(d["delta"]) and d["baseline"] == 0.0
    json.dumps([c.to_dict() for c in checks], allow_nan=False)
    back = Check.from_dict(d)  # `harness diff` reads reports with the extra keys
    assert (back.metric, back.slice, back.status) == ("hue", "pooled rotation", "pass")
    assert "detects >= " in format_check(hue) and "with 10+10 seeds" in format_check(hue)
    assert {c.metric for c in checks} >= {"hue", "band", "power", "band_power", "mean"}
    power = [c for c in checks if c.metric == "power"]
    assert [c.slice.split(" ", 1)[0] for c in power] == ["hue", "band"]


def test_a_hue_drift_fails_by_name_and_a_failing_power_check_names_the_seeds_it_needs():
    base = _seeds(6)
    drifted = compare_distribution(base, _seeds(6, offset=50, hue=6.0))
    assert any(c.metric == "hue" and c.slice == "pooled rotation" and c.status == "fail" for c in drifted)
    strict = DistributionConfig(detect_hue_deg=0.01)  # require_power, as in a suite
    power = next(c for c in compare_distribution(base, _seeds(6, offset=50), dist=strict) if c.metric == "power")
    assert power.status == "fail" and power.slice.startswith("hue rotation 0.01° needs ")
    need = int(power.slice.split(" needs ")[1].split()[0])
    assert need > 6 and power.slice.endswith("have 6") and power.value > power.baseline
    noted = compare_distribution(base, _seeds(6, offset=50), dist=DistributionConfig(detect_hue_deg=0.01,
                                                                                      require_power=False))
    assert next(c for c in noted if c.metric == "power").status == "pass"


def test_harness_diff_reads_reports_with_distribution_checks(tmp_path):
    from harness.report.checks_table import compact, write_part
    from harness.report.diff import diff_reports
    from harness.report.schema import CaseResult, Report

    base = _seeds(6)
    for name, hue in (("a", 0.0), ("b", 8.0)):
        checks = compare_distribution(base, _seeds(6, offset=50, hue=hue))
        case = CaseResult("v/p/seeds", "v", "p", None, summarize_status(checks), None, checks=checks)
        (tmp_path / name).mkdir()
        write_part(tmp_path / name, case)  # as a run records it: every check in checks.parquet
        compact(tmp_path / name, [case.id])
        Report(name, "s", "2024-01-01T00:00:00Z", {}, [case]).write(tmp_path / name)
    res = diff_reports(tmp_path / "a" / "report.json", tmp_path / "b" / "report.json")
    assert ("hue", "pooled rotation") in {(r.metric, r.slice) for r in res.regressions}
    saved = next(c for c in json.loads((tmp_path / "b" / "report.json").read_text())["cases"][0]["checks"]
                 if c["metric"] == "hue")  # a deciding check: it fails
    assert saved["seeds"] == [6, 6] and "min_detectable" in saved


def test_older_measurements_fall_back_to_tile_chroma_and_grey_images_skip_hue():
    from harness.measuring.result import Measurement

    old = [Measurement(m.metrics, {k: v for k, v in m.meta.items() if k != "hue_hist"}) for m in _seeds(6)]
    checks = compare_distribution(old, _seeds(6, offset=50, hue=8.0))
    hue = next(c for c in checks if c.metric == "hue" and c.slice.startswith("pooled"))
    assert hue.slice == "pooled rotation (tiles)" and hue.status == "fail" and hue.value > 4.0
    grey = [measure(np.full((32, 32, 3), 90 + i, np.uint8)) for i in range(8)]
    checks = compare_distribution(grey[:4], grey[4:])
    hue = next(c for c in checks if c.metric == "hue" and c.slice.startswith("pooled"))
    assert hue.status == "skip" and not any(c.slice.startswith("hue rotation") for c in checks)


def test_judge_group_compares_a_fresh_seed_set_with_every_stored_seed(tmp_path):
    from harness.suite.baselines import BaselineStore
    from harness.run.case import CaseOutput
    from harness.run.judge import judge_group

    store = BaselineStore("mini", tmp_path / "baselines")
    store.bake([(f"v/p/s{i + 1}", {"measurement": m.to_dict(), "stages": {}, "environment": {}, "pipeline": {}})
                for i, m in enumerate(_seeds(8))])
    store.bake([("v/other/s1", {"measurement": _seeds(1)[0].to_dict(), "stages": {}, "environment": {},
                                "pipeline": {}})])
    assert store.group_case_ids("v", "p") == [f"v/p/s{i}" for i in range(1, 9)]
    cases = [SimpleNamespace(vector="v", pipeline=SimpleNamespace(name="p"), seed=s, id=f"v/p/s{s}")
             for s in range(101, 107)]
    outs = [CaseOutput(c.id, m.to_dict(), {}, {}, {}, {}) for c, m in zip(cases, _seeds(6, offset=50))]
    suite = SimpleNamespace(ref="mini", path="mini.toml", distribution=DistributionConfig(require_power=False))
    status, error, checks = judge_group(cases, outs, store, None, suite)
    assert status == "pass", error
    assert {c.seeds for c in checks if isinstance(c, DistributionCheck)} == {(8, 6)}


# -- two trained face GANs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faces():
    pytest.importorskip("torch")
    from harness.run.power import face_images

    try:
        native = {("digiface", "base"): face_images("digiface", range(1, GENERATIVE_SEEDS + 1)),
                  ("digiface", "fresh"): face_images("digiface", range(101, 101 + GENERATIVE_SEEDS)),
                  ("celeba", "fresh"): face_images("celeba", range(101, 101 + GENERATIVE_SEEDS))}
    except (ImportError, AttributeError, FileNotFoundError, TypeError) as exc:
        pytest.skip(f"face GAN weights not installed ({exc})")
    big = {k: upscale(v) for k, v in native.items()}
    return {
        "base": [measure(a) for a in big["digiface", "base"]],
        "fresh": [measure(a) for a in big["digiface", "fresh"]],
        "rot6": [measure(rotate_hue(a, 6.0)) for a in big["digiface", "fresh"]],
        "celeba": [measure(a) for a in big["celeba", "fresh"]],
        "nearest": [measure(a) for a in upscale(native["digiface", "fresh"], method="nearest")],
    }


def _failing(checks):
    return {(c.metric, c.slice) for c in checks if c.status == "fail"}


def test_a_fresh_seed_set_of_the_same_gan_passes(faces):
    checks = compare_distribution(faces["base"], faces["fresh"], dist=SUITE)
    assert summarize_status(checks) == "pass", sorted(_failing(checks))[:5]
    assert all(c.status == "pass" for c in checks if c.metric == "power")


def test_a_6_degree_hue_rotation_fails_with_the_default_seed_count(faces):
    checks = compare_distribution(faces["base"], faces["rot6"], dist=SUITE)
    assert ("hue", "pooled rotation") in _failing(checks)
    hue = next(c for c in checks if c.metric == "hue")
    assert hue.min_detectable <= 6.0 and 4.0 < hue.value < 12.0


def test_swapping_the_gan_or_the_upscaler_fails_with_band_checks_named(faces):
    for cand in ("celeba", "nearest"):
        failing = _failing(compare_distribution(faces["base"], faces[cand], dist=SUITE))
        assert any(m == "band" for m, _ in failing), (cand, sorted(failing)[:5])


def test_too_few_seeds_fail_the_power_check_naming_the_seed_count_that_would_do(faces):
    checks = compare_distribution(faces["base"][:16], faces["rot6"][:16], dist=SUITE)
    power = next(c for c in checks if c.metric == "power" and c.slice.startswith("hue"))
    assert power.status == "fail" and power.slice.endswith("have 16")
    need = int(power.slice.split(" needs ")[1].split()[0])
    assert 32 <= need <= 400


def test_a_distribution_check_keeps_its_power_through_report_json():
    # a resumed run re-reads recorded checks: min_detectable, se and seeds must survive
    from harness.comparing.distribution import DistributionCheck
    from harness.comparing.engine import Check

    c = DistributionCheck("hue", "pooled rotation", 3.0, 0.0, 3.0, 6.4, "pass", min_detectable=8.0, seeds=(16, 16),
                          note="permutation test", se=1.9)
    back = Check.from_dict(c.to_dict())
    assert isinstance(back, DistributionCheck) and back.to_dict() == c.to_dict()
    plain = Check("mean", "ch=Y", 1.0, 1.0, 0.0, 1.0, "pass")
    assert type(Check.from_dict(plain.to_dict())) is Check
