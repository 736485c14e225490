"""How often distribution mode raises a false alarm, and how often it sees a drift: measured.

The experiments behind :mod:`harness.comparing.distribution`'s numbers, kept runnable, on the
real backends only (a generator that cannot render stops the command: exit 2, one line)::

    python -m harness.run.power                 # nightly rates given a committed baseline
    python -m harness.run.power --experiment scenarios --pool 300 --reps 200 --seeds 8 16 32 64

The default experiment is :mod:`harness.run.power_nightly` (per-baseline false-alarm and
detection rates, with each baseline's bake-time self-check).  ``scenarios``, below, draws a
fresh baseline *and* a fresh candidate set in every draw (the marginal rates):

1. **Pools**: seeds ``1..pool`` of each trained face GAN (``digiface``, ``celeba``: see
   :mod:`harness.models.gan`) rendered once at 64x64, upscaled to 256x256 (PIL
   Lanczos, as the ``face_gan`` backend does), and measured once; plus variants of the same
   renders: every image's hue rotated by 6° (:func:`rotate_hue`), and other upscalers (bicubic,
   nearest) as a stand-in for swapping the SR model.
2. **Resampling**: for ``reps`` times, ``n`` baseline seeds and ``n`` *other* seeds for the
   candidate (disjoint index sets, so a candidate is always a fresh seed set), compared with
   :func:`~harness.comparing.distribution.compare_distribution`; the rate at which the group
   fails, and which checks failed.  ``same`` (digiface vs fresh digiface seeds, and celeba vs
   celeba) is the false-alarm rate; ``rot6``, ``gan_swap``, ``sr_nearest``, ``sr_bicubic`` are
   detection rates.

Rates are reported with the ``power`` checks counted separately (``fail_tests``: a hue, band or
slice check failed; ``fail_power``: a ``power`` check did, i.e. the seeds could not have seen the
target drift).

**Measured** before the baseline's self-check existed (pool 400 seeds per model, 200 resamplings
per cell, the defaults of then: alpha 0.01 split in thirds, power 0.8, 6°, 10 %; ``fail_tests`` in
percent, n = seeds per side; today's default alpha 0.03 gives the hue check 2 %, see
:mod:`harness.comparing.distribution`)::

                      n=8    16     32     64     96
    same_digiface     0.5    0.5    1.0    0.0    1.0    false alarms (hue/band/slice checks)
    same_celeba       0.5    1.0    1.0    0.0    1.0
    rot6_digiface     2.5   10.0   39.5   82.0   98.0    the hue check: 1.5 / 9.5 / 39.5 / 82 / 97.5
    rot6_celeba      15.5   50.5   90.5  100    100
    gan_swap         65.5  100    100    100    100      pooled band checks: 25.5 / 74.5 / 100 / 100 / 100
    sr_nearest      100    100    100    100    100      pooled band checks: 100 at every n
    sr_bicubic        1.0    1.0    1.5    1.0    3.5    not seen: below the visibility floor
    power check fails on the same model: digiface 99 / 98 / 97 / 29 / 0, celeba 95.5 / 85 / 12.5 / 0 / 0

Hence :data:`GENERATIVE_SEEDS`: with 96 seeds per side a 6° rotation of a face GAN's images fails
(98 %), a fresh seed set passes (99 %, power check included), and swaps fail by name.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from harness.run.power_images import UPSCALERS, BackendUnavailable, face_images, rotate_hue, upscale

__all__ = ["rotate_hue", "face_images", "BackendUnavailable", "upscale", "build_pools", "resample", "Rates", "experiment", "SCENARIOS",
           "UPSCALERS", "GENERATIVE_SEEDS"]


#: Seeds per side a generative distribution suite needs (measured above): fewer, and the power check
#: says a 6° hue rotation of a trained 64x64 face GAN (digiface) could go unseen (celeba: 64 suffice).
GENERATIVE_SEEDS = 96

#: name -> (baseline pool, candidate pool)
SCENARIOS: dict[str, tuple[str, str]] = {
    "same_digiface": ("digiface", "digiface"),
    "same_celeba": ("celeba", "celeba"),
    "rot6_digiface": ("digiface", "digiface_rot6"),
    "rot6_celeba": ("celeba", "celeba_rot6"),
    "gan_swap": ("digiface", "celeba"),
    "sr_nearest": ("digiface", "digiface_nearest"),
    "sr_bicubic": ("digiface", "digiface_bicubic"),
}


def build_pools(pool: int, *, first_seed: int = 1, size: int = 256, rotation: float = 6.0,
                say: Callable[[str], None] = lambda s: None) -> dict[str, list]:
    """Measured pools: ``digiface``, ``celeba`` and, of the same renders, ``*_rot6``,
    ``digiface_bicubic``, ``digiface_nearest`` (``pool`` seeds each, from ``first_seed``)."""
    from harness.measuring.driver import measure

    seeds = list(range(first_seed, first_seed + pool))
    out: dict[str, list] = {}
    for model in ("digiface", "celeba"):
        t0 = time.perf_counter()
        native = face_images(model, seeds)
        big = upscale(native, size)
        out[model] = [measure(a) for a in big]
        out[f"{model}_rot6"] = [measure(rotate_hue(a, rotation)) for a in big]
        if model == "digiface":
            for method in ("bicubic", "nearest"):
                out[f"{model}_{method}"] = [measure(a) for a in upscale(native, size, method)]
        say(f"pool {model}: {pool} seeds measured in {time.perf_counter() - t0:.1f}s")
    return out


@dataclass
class Rates:
    """Outcome of ``reps`` resampled comparisons."""

    reps: int = 0
    fail: int = 0  # the group failed (any check)
    fail_tests: int = 0  # a hue, band or slice check failed
    fail_power: int = 0  # a power check failed
    by_metric: dict[str, int] = field(default_factory=dict)  # failing metric -> reps it failed in
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        r = max(self.reps, 1)
        return {"reps": self.reps, "fail_rate": self.fail / r, "test_fail_rate": self.fail_tests / r,
                "power_fail_rate": self.fail_power / r,
                "by_metric": {k: v / r for k, v in sorted(self.by_metric.items(), key=lambda kv: -kv[1])},
                "seconds_per_compare": self.seconds / r}


def resample(base: Sequence, cand: Sequence, n: int, reps: int, *, seed: int = 0, dist: Any = None,
             n_perm: int | None = None) -> Rates:
    """Compare ``n`` random baseline seeds with ``n`` other random candidate seeds, ``reps`` times.

    ``base`` and ``cand`` are measured pools indexed by seed (the same index is the same seed:
    the candidate's indices are drawn disjoint from the baseline's, so every candidate set is a
    fresh seed set).
    """
    from harness.comparing.distribution import compare_distribution
    from harness.comparing.seedtests import PERMUTATIONS

    rng = np.random.default_rng(seed)
    size = min(len(base), len(cand))
    if 2 * n > size:
        raise ValueError(f"{n} + {n} disjoint seeds need a pool of {2 * n}, have {size}")
    rates = Rates()
    for _ in range(reps):
        idx = rng.permutation(size)
        t0 = time.perf_counter()
        checks = compare_distribution([base[i] for i in idx[:n]], [cand[i] for i in idx[n:2 * n]], None, dist,
                                      n_perm=n_perm or PERMUTATIONS)
        rates.seconds += time.perf_counter() - t0
        failed = {c.metric for c in checks if c.status == "fail"}
        rates.reps += 1
        rates.fail += bool(failed)
        rates.fail_power += "power" in failed
        rates.fail_tests += bool(failed - {"power"})
        for m in failed:
            rates.by_metric[m] = rates.by_metric.get(m, 0) + 1
    return rates


def experiment(pool: int = 300, seeds: Sequence[int] = (8, 16, 32, 64), reps: int = 200,
               scenarios: Sequence[str] = tuple(SCENARIOS), n_perm: int | None = None, dist: Any = None,
               pools: dict[str, list] | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Rates for every scenario and seed count: ``{scenario: {n: Rates.as_dict()}}`` plus the setup.

    ``dist``: the ``[distribution]`` table to judge with (default: a suite's default, power required).
    """
    if dist is None:
        from harness.comparing.settings import DistributionConfig

        dist = DistributionConfig()
    pools = pools or build_pools(pool, say=say)
    out: dict[str, Any] = {"pool": pool, "reps": reps, "n_perm": n_perm, "results": {}}
    for name in scenarios:
        b, c = SCENARIOS[name]
        out["results"][name] = {}
        for n in seeds:
            if 2 * n > min(len(pools[b]), len(pools[c])):
                continue
            r = resample(pools[b], pools[c], n, reps, seed=1000 * n + len(name), dist=dist, n_perm=n_perm)
            out["results"][name][n] = r.as_dict()
            say(f"{name:14s} n={n:3d}: fail {r.fail / r.reps:6.1%} (tests {r.fail_tests / r.reps:6.1%}, "
                f"power {r.fail_power / r.reps:6.1%}) {json.dumps(r.as_dict()['by_metric'])}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``baselines`` (default): the nightly false-alarm rate given a committed baseline
    (:mod:`harness.run.power_nightly`); ``scenarios``: the resampling experiment above.  Exit 0
    when the targets hold, 1 when one is missed, 2 when a backend cannot render (one line)."""
    import sys

    from harness.run import power_nightly as nightly

    ap = argparse.ArgumentParser(prog="python -m harness.run.power", description=__doc__.split("\n\n")[0])
    ap.add_argument("--experiment", choices=("baselines", "scenarios"), default="baselines")
    nightly.add_arguments(ap)
    ap.add_argument("--reps", type=int, default=None, help="draws per cell (default: baselines 20, scenarios 200)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[8, 16, 32, 64], help="scenarios: seeds per side")
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    ap.add_argument("--perm", type=int, default=None, help="relabellings per family (default: the engine's)")
    ap.add_argument("--json", default=None, help="write the rates to this file")
    args = ap.parse_args(argv)
    try:
        if args.experiment == "baselines":
            res = nightly.run(args, say=print)
            code = 0 if res["targets_met"] else 1
        else:
            res = experiment(args.pool or 300, args.seeds, args.reps or 200, args.scenarios, args.perm)
            code = 0
    except BackendUnavailable as exc:
        print(f"python -m harness.run.power: {exc}", file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1, default=str)
    return code


if __name__ == "__main__":  # the module's own copy, so that nightly's exceptions are this main's classes
    from harness.run.power import main as _main

    raise SystemExit(_main())
