"""The nightly false-alarm rate *given a committed baseline*, measured on the real face GANs.

``python -m harness.run.power`` (the default experiment) runs :func:`run`:

1. **Pools**: seeds ``1..pool`` of each trained face GAN (``face_gan`` model ``digiface``,
   gan-face-generate; ``celeba``, generateme) rendered once through the backend at 64x64,
   upscaled to 256x256 with PIL Lanczos and measured; and the same renders with every
   image's hue rotated by 6°.  A backend that cannot render stops the command (exit 2).
2. **Baselines**: ``baselines`` differently seeded baselines per generator, each
   ``baseline_seeds`` seeds drawn from the pool, and its bake-time self-check
   (:func:`~harness.comparing.selfcheck.self_check`) on ``selfcheck_seeds`` other seeds of the
   pool, exactly as ``harness bake`` records it.
3. **Nights**: for each baseline, ``reps`` fresh candidate sets of ``run_seeds`` seeds drawn from
   the seeds that are neither baked nor held out: the share whose group fails (a hue, band or
   slice check; power checks aside) is that baseline's false-alarm rate; the same seed sets with
   the 6° rotation give its detection rate.

Targets (issue [7 of 9]): false alarms <= 5 % on average over the baselines, no baseline above
10 % unless its self-check said so (and named a seed count), the rotation caught in >= 95 % of
draws.  The command prints every baseline's rates, their averages and whether each target held.

**Measured** (defaults: pool 800 per generator, 5 baselines of 256 seeds, self-check on 256
held-out seeds in 20 draws, 20 nights of 32 seeds, alpha 0.03; 2.5 min on 2 shared cores)::

                 false alarms per baseline      mean   6° caught   self-check expected
    digiface     0  0  0  5  5 %                2.0 %   96 %        5 10 0 10 0 %
    celeba       5  0  5  0  0 %                2.0 %   99 %        0  0 0  0 0 %

With the baseline only as large as the run (``--baseline-seeds 32``, 8 baselines, 30 nights):
false alarms 0-6.7 % per baseline (mean 0.0 % digiface, 1.2 % celeba), but a 6° rotation is
caught in only 67.5 % of digiface nights (celeba 99.6 %): 32 seeds per side cannot see 6° on
that model at any level a nightly gate can afford (its pooled hue varies by ~8° per seed), so
its power check names the seed count.  ``--worst-of 50`` (each baseline the furthest off in hue
of 50 random ones: the top 2 %) shows what the self-check is for: at 32 seeds such baselines
fail 3-33 % of nights (the issue's 7 of 35), and the self-check flagged 1 of digiface's 4 and 3
of celeba's 4 above 10 % (its own held-out seeds carry sampling error ``sigma / sqrt(held)``:
~1° at 64 held-out seeds on digiface); at 256 seeds they fail 0-25 % (9 % / 15 % mean; the
finite pool makes this harsher than life: the seeds left for candidates sit the other way).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["add_arguments", "run", "nightly_rates", "GENERATORS", "PERM", "MAX_FA", "MEAN_FA", "MIN_DETECT"]

GENERATORS = ("digiface", "celeba")
MEAN_FA, MAX_FA, MIN_DETECT = 0.05, 0.10, 0.95
#: Relabellings per family in this experiment (Monte-Carlo critical values; a report uses 2000).
PERM = 500


def add_arguments(ap) -> None:
    ap.add_argument("--pool", type=int, default=None, help="seeds rendered per generator (default 800; scenarios 300)")
    ap.add_argument("--baselines", type=int, default=5, help="baselines per generator (default 5)")
    ap.add_argument("--baseline-seeds", type=int, default=256, help="seeds per baseline (default 256)")
    ap.add_argument("--run-seeds", type=int, default=32, help="candidate seeds per night (default 32)")
    ap.add_argument("--selfcheck-seeds", type=int, default=None,
                    help="held-out seeds per self-check (default, as bake: max(baseline seeds, 2 x run seeds))")
    ap.add_argument("--selfcheck-draws", type=int, default=20, help="self-check draws (default 20)")
    ap.add_argument("--generators", nargs="+", choices=GENERATORS, default=list(GENERATORS))
    ap.add_argument("--worst-of", type=int, default=1, metavar="K",
                    help="stress test: each baseline is the one of K random seed sets whose pooled hue sits "
                         "furthest from the pool's (default 1: a plain random baseline)")


def _pool(model: str, n: int) -> tuple[list, list]:
    from harness.run.power_images import face_images, rotate_hue, upscale
    from harness.measuring.driver import measure

    big = upscale(face_images(model, range(1, n + 1)))
    return [measure(a) for a in big], [measure(rotate_hue(a, 6.0)) for a in big]


def _fails(checks) -> set[str]:
    return {c.metric for c in checks if c.status == "fail" and c.metric != "power"}


def _hue_offsets(pool: Sequence, orders: np.ndarray, nb: int) -> np.ndarray:
    """Pooled hue rotation (degrees) of each order's first ``nb`` seeds against the whole pool."""
    from harness.comparing.seedtests import hue_rotation, hue_spectra

    sp = hue_spectra(np.array([m.meta["hue_hist"] for m in pool], float))
    return hue_rotation(sp.mean(axis=0)[None], np.stack([sp[o[:nb]].mean(axis=0) for o in orders]))


def nightly_rates(same: Sequence, rotated: Sequence, *, baselines: int, nb: int, nc: int, nh: int, reps: int,
                  dist: Any, draws: int, n_perm: int | None = None, seed: int = 0, worst_of: int = 1,
                  say: Callable[[str], None] = print, label: str = "") -> list[dict[str, Any]]:
    """One row per baseline: its self-check, its false-alarm and detection rates over ``reps`` nights."""
    from harness.comparing.distribution import compare_distribution
    from harness.comparing.seedtests import PERMUTATIONS
    from harness.comparing.selfcheck import self_check

    if nb + nh + nc > len(same):
        raise ValueError(f"a pool of {len(same)} seeds cannot hold {nb} baked + {nh} held-out + {nc} candidate seeds")
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(baselines):
        orders = np.array([rng.permutation(len(same)) for _ in range(worst_of)])
        off = _hue_offsets(same, orders, nb) if worst_of > 1 else np.zeros(1)
        idx = orders[int(np.argmax(np.abs(off)))]
        baked = [same[i] for i in idx[:nb]]
        sc = self_check(baked, [same[i] for i in idx[nb:nb + nh]], nc, dist, draws=draws, n_perm=n_perm)
        rest = idx[nb + nh:]
        fa = det = 0
        why: dict[str, int] = {}
        for _ in range(reps):
            pick = rng.choice(rest, nc, replace=False)
            got = _fails(compare_distribution(baked, [same[i] for i in pick], None, dist,
                                              n_perm=n_perm or PERMUTATIONS))
            fa += bool(got)
            for m in got:
                why[m] = why.get(m, 0) + 1
            det += bool(_fails(compare_distribution(baked, [rotated[i] for i in pick], None, dist,
                                                    n_perm=n_perm or PERMUTATIONS)))
        row = {"baseline": b, "hue_offset_deg": float(np.max(np.abs(off))), "false_alarms": fa, "detected": det,
               "reps": reps, "false_alarm_rate": fa / reps,
               "detect_rate": det / reps, "failing": why, "selfcheck": sc.record()}
        rows.append(row)
        say(f"{label:9s} baseline {b}" + (f" (hue {np.max(np.abs(off)):.1f}° off)" if worst_of > 1 else "")
            + f": false alarms {fa:2d}/{reps} ({fa / reps:5.1%}) {why or ''}; "
            f"6° rotation caught {det:2d}/{reps} ({det / reps:5.1%}); self-check expects {sc.rate:5.1%}"
            + ("" if sc.ok else f" > {sc.max_false_alarm:.0%}, names {sc.seeds_needed} seeds"))
    return rows


def _verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fa = [r["false_alarm_rate"] for r in rows]
    det = sum(r["detected"] for r in rows) / max(sum(r["reps"] for r in rows), 1)
    # a baseline above MAX_FA is acceptable only when its own self-check flagged it and named a seed count
    unflagged = [r["baseline"] for r in rows if r["false_alarm_rate"] > MAX_FA
                 and not (r["selfcheck"]["false_alarm_rate"] > r["selfcheck"]["max_false_alarm"]
                          and r["selfcheck"]["seeds_needed"])]
    return {"mean_false_alarm": float(np.mean(fa)), "max_false_alarm": float(np.max(fa)), "detect_rate": det,
            "unflagged_over_max": unflagged,
            "ok": bool(np.mean(fa) <= MEAN_FA and not unflagged and det >= MIN_DETECT)}


def run(args, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The experiment with ``args`` (:func:`add_arguments`); returns the rows, verdicts and setup."""
    from harness.comparing.settings import DistributionConfig

    dist = replace(DistributionConfig(), selfcheck_draws=args.selfcheck_draws)
    pool, reps = args.pool or 800, args.reps or 20
    n_perm = args.perm or PERM  # 500 relabellings (the engine draws 2000): 4x faster, the same test
    nb, nc = args.baseline_seeds, args.run_seeds
    nh = max(nb, 2 * nc) if args.selfcheck_seeds is None else args.selfcheck_seeds
    say(f"pools: {pool} seeds per generator (64x64 -> 256x256 Lanczos), each also rotated 6°; {args.baselines} "
        f"baselines of {nb} seeds per generator, self-check on {nh} held-out seeds ({args.selfcheck_draws} draws), "
        f"{reps} nights of {nc} fresh seeds per baseline; alpha {dist.alpha:g}, {n_perm} relabellings"
        + (f"; each baseline the furthest off in hue of {args.worst_of} draws" if args.worst_of > 1 else ""))
    out: dict[str, Any] = {"pool": pool, "baseline_seeds": nb, "run_seeds": nc, "selfcheck_seeds": nh, "reps": reps,
                           "alpha": dist.alpha, "generators": {}}
    ok = True
    for model in args.generators:
        t0 = time.perf_counter()
        same, rotated = _pool(model, pool)
        say(f"pool {model}: {pool} seeds rendered and measured in {time.perf_counter() - t0:.0f}s")
        rows = nightly_rates(same, rotated, baselines=args.baselines, nb=nb, nc=nc, nh=nh, reps=reps, dist=dist,
                             draws=args.selfcheck_draws, n_perm=n_perm, worst_of=args.worst_of, say=say,
                             label=model)
        v = _verdict(rows)
        ok &= v["ok"]
        say(f"{model:9s} average false alarms {v['mean_false_alarm']:5.1%} (target <= {MEAN_FA:.0%}), worst "
            f"baseline {v['max_false_alarm']:5.1%} (<= {MAX_FA:.0%} or flagged by its self-check), 6° caught "
            f"{v['detect_rate']:5.1%} (>= {MIN_DETECT:.0%}): {'targets met' if v['ok'] else 'TARGET MISSED'}")
        out["generators"][model] = {"baselines": rows, **v}
    out["targets_met"] = ok
    return out
