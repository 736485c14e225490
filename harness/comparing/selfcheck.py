"""A baseline's own false-alarm rate: measured at bake time on seeds it does not store.

A distribution baseline is baked once and then compared night after night with fresh seed
sets.  The test is calibrated *marginally* (over baselines and candidates drawn together: at
most ``alpha``), but a given baseline is one draw of its seeds: one whose seeds happen to sit
1.5-2.5 standard errors off the model's mean (a face GAN's pooled hue: ~8° per seed, so
~0.7° at 128 seeds) raises false alarms on most nights that a typical one would not.  No
statistic computed from the baseline alone can tell, because the offset is the baseline's own
sampling error; held-out seeds of the same model can.

:func:`self_check` takes the baked seeds' measurements and ``held`` seeds rendered with the
same pipeline but *not stored*, and compares the baked set with ``draws`` candidate sets of the
run's size ``n_run``, each drawn *without* replacement from the held-out seeds.  Why without: a
draw's offset from the model's mean is the held-out set's offset (variance ``sigma^2 / held``)
plus the draw's own, which without replacement is ``sigma^2 (1/n_run - 1/held)``: together
exactly a fresh candidate set's ``sigma^2 / n_run`` (a bootstrap, with replacement, would add the
two and over-state the rate).  So bake holds out more seeds than a run compares (by default as
many as it bakes, at least twice the run's).  The fraction of draws in which a hue,
band or slice check fails (power checks aside: they depend on seed counts, not on luck) is the
rate this baseline is expected to give.  It is an estimate: its binomial error over ``draws``
and the held-out set's own offset are both in it.

When the rate is above ``max_false_alarm``, :func:`baseline_seeds_needed` names the baseline
size at which 9 bakes in 10 stay below it, from the checks that failed: for each, its per-seed
spread ``sigma`` (from its ``SE`` as ``sigma^2 (1/nb + 1/nc)``), its critical value, and the
normal model ``P(|b + e| > crit * sigma * sqrt(1/n + 1/nc))`` with the candidate's
``e ~ N(0, sigma^2 / nc)`` and the baseline's offset ``b`` at its 90th percentile over bakes,
``1.645 sigma / sqrt(n)``.  When that size is no more than the baked one, this bake is an unlucky
draw: the line says to re-bake from other seeds.

:func:`recorded_check` turns the record stored with the baseline into the check every run
against it carries (metric ``selfcheck``): it fails when the expected rate is above
``max_false_alarm`` and the suite requires power, else it passes and says the rate.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from scipy import stats

from harness.comparing.checks import DistributionCheck

__all__ = ["SelfCheck", "self_check", "baseline_seeds_needed", "bake_seed_lists", "recorded_check",
           "SELFCHECK_METRIC", "SELFCHECK_RNG_SEED", "QUANTILE"]

SELFCHECK_METRIC = "selfcheck"
#: The generator of the draws (fixed: the same bake gives the same record).
SELFCHECK_RNG_SEED = 20261206
#: The share of bakes the named seed count keeps at or below ``max_false_alarm``.
QUANTILE = 0.9
_LIMIT = 100_000


@dataclass(frozen=True)
class SelfCheck:
    """What a baseline's self-check found; ``record()`` is what the baseline stores."""

    rate: float  # fraction of draws with a failing hue/band/slice check
    draws: int
    held_out: int  # held-out seeds the draws came from
    baseline_seeds: int
    run_seeds: int  # candidate seeds per draw (the suite's seed count)
    max_false_alarm: float
    failing: dict[str, int] = field(default_factory=dict)  # "metric [slice]" -> draws it failed in
    seeds_needed: int | None = None  # baseline seeds at which QUANTILE of bakes reach max_false_alarm

    @property
    def ok(self) -> bool:
        return self.rate <= self.max_false_alarm

    def record(self) -> dict[str, Any]:
        return {"false_alarm_rate": round(self.rate, 4), "draws": self.draws, "held_out": self.held_out,
                "baseline_seeds": self.baseline_seeds, "run_seeds": self.run_seeds,
                "max_false_alarm": self.max_false_alarm, "failing": dict(sorted(self.failing.items())),
                "seeds_needed": self.seeds_needed}

    def summary(self) -> str:
        """One line for bake's output."""
        head = (f"expected false alarms {100 * self.rate:.1f}% ({self.draws} draws of {self.run_seeds} from "
                f"{self.held_out} held-out seeds against {self.baseline_seeds} baked)")
        if self.ok:
            return f"{head}: within {100 * self.max_false_alarm:g}%"
        worst = ", ".join(f"{k} {v}" for k, v in Counter(self.failing).most_common(3))
        n = self.seeds_needed
        need = ("no baseline size reaches it at this alpha and seed count" if not n else
                f"bake {n} seeds ([distribution] baseline_seeds) to reach it in 9 bakes of 10"
                if n > self.baseline_seeds
                else f"an unlucky draw: re-bake from other seeds (a bake of {n} reaches it in 9 of 10)")
        return f"{head}: ABOVE {100 * self.max_false_alarm:g}% (failing: {worst}); {need}"


def bake_seed_lists(run_seeds: Sequence[int], baseline_seeds: int | None,
                    selfcheck_seeds: int | None) -> tuple[list[int], list[int]]:
    """``(baked, held_out)`` seed lists: the run's seeds, then the integers after the largest up to
    ``baseline_seeds`` in all; then ``selfcheck_seeds`` more (None: as many as are baked, at least
    twice the run's)."""
    run = list(dict.fromkeys(int(s) for s in run_seeds))
    want = max(len(run), baseline_seeds or 0)
    nxt = max(run) + 1 if run else 0
    baked = run + list(range(nxt, nxt + want - len(run)))
    n_held = max(len(baked), 2 * len(run)) if selfcheck_seeds is None else int(selfcheck_seeds)
    start = max(baked) + 1 if baked else 0
    return baked, list(range(start, start + n_held))


def self_check(baked: Sequence, held: Sequence, n_run: int, dist: Any, config: Any = None, *,
               draws: int | None = None, n_perm: int | None = None, seed: int = SELFCHECK_RNG_SEED) -> SelfCheck:
    """Compare the baked seeds' measurements with ``draws`` sets of ``n_run`` held-out ones (drawn
    without replacement; with replacement when there are no more held-out seeds than ``n_run``).

    ``dist``: the suite's ``[distribution]`` table (``selfcheck_draws``, ``max_false_alarm`` and
    what :func:`~harness.comparing.distribution.compare_distribution` reads).  Raises
    ``ValueError`` with fewer than 2 baked or 2 held-out seeds.
    """
    from harness.comparing.distribution import compare_distribution
    from harness.comparing.seedtests import PERMUTATIONS

    if len(baked) < 2 or len(held) < 2:
        raise ValueError(f"the self-check needs >= 2 baked and >= 2 held-out seeds, got {len(baked)} and {len(held)}")
    draws = int(draws or dist.selfcheck_draws)
    rng = np.random.default_rng(seed)
    failed, fails = Counter(), 0
    deltas: list[dict[str, tuple[float, float, float]]] = []  # per draw: check -> (delta, se, crit)
    for _ in range(draws):
        pick = (rng.choice(len(held), n_run, replace=False) if len(held) > n_run
                else rng.integers(0, len(held), size=n_run))
        checks = compare_distribution(list(baked), [held[i] for i in pick], config, dist,
                                      n_perm=n_perm or PERMUTATIONS)
        bad = [c for c in checks if c.status == "fail" and c.metric != "power"]
        fails += bool(bad)
        failed.update(f"{c.metric} [{c.slice}]" for c in bad)
        deltas.append({f"{c.metric} [{c.slice}]": (float(c.delta), float(c.se), float(c.crit)) for c in checks
                       if c.delta is not None and getattr(c, "se", None) and getattr(c, "crit", None) is not None
                       and math.isfinite(c.crit)})
    rate = fails / draws
    need = None
    if rate > dist.max_false_alarm:
        need = baseline_seeds_needed(_failing_stats(failed, deltas), len(baked), n_run, dist.max_false_alarm)
    return SelfCheck(rate, draws, len(held), len(baked), n_run, float(dist.max_false_alarm), dict(failed), need)


def _failing_stats(failed: Counter, deltas: list[dict[str, tuple[float, float, float]]]) -> list[tuple[float, ...]]:
    """``(se, crit, offset)`` of every check that failed in a draw: medians of its SE and critical
    value, and its mean delta over all draws (the baked set's offset from the held-out seeds)."""
    out = []
    for key in failed:
        got = np.array([d[key] for d in deltas if key in d])
        if len(got):
            out.append((float(np.median(got[:, 1])), float(np.median(got[:, 2])), float(np.mean(got[:, 0]))))
    return out


def _fa(n: float, sigma: float, crit: float, nc: int, q: float) -> float:
    """False-alarm rate of one check for a baseline of ``n`` seeds whose offset is at quantile ``q``."""
    t = crit * sigma * math.sqrt(1.0 / n + 1.0 / nc)
    b = stats.norm.ppf(0.5 + q / 2.0) * sigma / math.sqrt(n)  # |offset| at the q-quantile of bakes
    e = sigma / math.sqrt(nc)
    return float(stats.norm.sf((t - b) / e) + stats.norm.cdf((-t - b) / e))


def baseline_seeds_needed(failing: Sequence[tuple[float, ...]], nb: int, nc: int, max_fa: float,
                          q: float = QUANTILE) -> int | None:
    """Smallest baseline size at which a share ``q`` of bakes keep every failing check at or below
    ``max_fa`` (the normal model above).  ``failing``: ``(se, crit, ...)`` per check, measured with
    ``nb`` baseline and ``nc`` candidate seeds; searched from ``nb`` up (below about ``nc`` seeds the
    rate *rises* with the size: the tolerance then carries the baseline's own error, at the cost of
    power).  ``nb`` itself when this bake is an unlucky draw of a size that is usually enough
    (re-baking other seeds fixes it); None when even an exact baseline cannot (``crit`` too small
    for ``max_fa`` at ``nc`` seeds) or nothing is known."""
    if not failing:
        return None
    need = max(nb, 2)
    for se, crit, *_ in failing:
        sigma = se / math.sqrt(1.0 / nb + 1.0 / nc)
        if sigma <= 0:
            continue
        if _fa(_LIMIT, sigma, crit, nc, q) > max_fa:
            return None
        lo, hi = need, _LIMIT
        while lo < hi:  # from about nc seeds on, the rate falls as n grows
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _fa(mid, sigma, crit, nc, q) <= max_fa else (mid + 1, hi)
        need = max(need, lo)
    return need


def recorded_check(records: Sequence[dict[str, Any] | None], n_baseline: int, n_run: int, dist: Any):
    """The ``selfcheck`` check of a run against a baseline whose seeds carry ``records`` (None: no
    self-check recorded, e.g. baked before it existed or with ``selfcheck_seeds = 0``)."""
    recs = [r for r in records if r]
    if not recs:
        return None
    r = recs[0]
    if len(recs) < len(records) or any(x != r for x in recs):  # part of the group re-baked without it
        status = "fail" if dist.require_power else "pass"
        return DistributionCheck(SELFCHECK_METRIC, f"unchecked: {len(recs)} of {len(records)} baked seeds carry "
                                 "a self-check, or theirs differ", None, None, None, 0.0, status,
                                 note="re-bake the group (`harness bake` without --from-report) to measure the "
                                      "false-alarm rate this baseline gives"
                                      + ("" if dist.require_power else " (require_power = false: noted, not failed)"))
    rate, cap = float(r["false_alarm_rate"]), float(dist.max_false_alarm)
    ok = rate <= cap
    status = "pass" if ok or not dist.require_power else "fail"
    stale = []
    if int(r.get("baseline_seeds", n_baseline)) != n_baseline:
        stale.append(f"checked with {r['baseline_seeds']} baked seeds, the group has {n_baseline}")
    if int(r.get("run_seeds", n_run)) != n_run:
        stale.append(f"checked for runs of {r['run_seeds']} seeds, this run has {n_run}")
    need = r.get("seeds_needed")
    fix = ("" if not need else f", needs {need} baked seeds" if need > n_baseline else ", re-bake from other seeds")
    text = f"expected false alarms {100 * rate:.1f}% of runs" + ("" if ok else f" > {100 * cap:g}%{fix}")
    note = (f"bake-time self-check: {r.get('draws')} draws of {r.get('run_seeds')} held-out seeds "
            f"({r.get('held_out')} rendered, not stored) against the {n_baseline} baked"
            + ("" if ok or dist.require_power else " (require_power = false: noted, not failed)")
            + ("; " + "; ".join(stale) if stale else ""))
    return DistributionCheck(SELFCHECK_METRIC, text, rate, cap, rate - cap, 0.0, status, note=note)
