"""``distribution`` mode: a set of candidate seeds against a set of baseline seeds.

When a model changes, seed ``s`` of the candidate is a different image from seed ``s`` of the
baseline, so nothing can be compared per seed: each statistic's *distribution over seeds* is.
The two seed sets are independent samples; a statistic fails only when its difference is
**statistically significant** (a two-sample test with family-wise control, below) **and beyond
the practical floor** (the paired mode's ``abs_tol``/``rel_tol``/visibility and noise bias).
Each check's ``tolerance`` is that effective threshold on ``|delta|``::

    tolerance = max(floor, crit * SE)

Three families of checks, each at its share of the suite's ``alpha`` (:data:`FAMILY_SHARE`;
Bonferroni across families: the group's false-alarm rate is at most ``alpha``).  Hue gets two
thirds: a face GAN's pooled hue rotation varies by ~8° per seed (its per-seed scores are
light-tailed: trimmed or Huber estimates are *less* efficient, optimal harmonic weights gain
< 2 %), so 32 candidate seeds alone put ~1.4° of standard error on it, and seeing 6° in 95 %
of draws needs a tolerance of ~3.5°, a level of ~2 %; bands and slices see theirs at 0.5 %:

``hue`` / ``pooled rotation``
    The hue rotation between the two sides' pooled, chroma-weighted hue histograms
    (:func:`~harness.comparing.seedtests.hue_rotation`; per-seed histograms from
    ``meta["hue_hist"]``, older measurements fall back to their tiles' mean chroma vectors and
    say so in the slice).  Per-image statistics of different faces vary a lot (the global hue
    of a face GAN's images has a circular std of ~26°); pooling over every seed's pixels, each
    seed weighing the same, and aligning the whole histogram (the skin peak dominates) is what
    makes a few degrees visible.  ``SE``: the sandwich (delta-method) estimate over seeds; the
    critical value: the permutation distribution of ``rotation / SE``, each relabelling
    studentised by its own ``SE``.  ``value`` is the rotation, ``baseline`` 0; the floor is the
    ``hue`` metric's ``abs_tol`` (1°; a ``hue`` rule for slice ``pooled rotation`` overrides it).
``band`` / ``pooled band=high ch=Y``, ``pooled band=high/mid ch=Y``, ``pooled ch=Y f=0.297/0.210``
    Pooled band energies on a log scale: per seed, each whole-image band's energy
    (``band_power``, per channel) in dB, the ratio (dB) of adjacent bands, and of adjacent luma
    ``spectrum`` bins; ``value``/``baseline`` are the means over each side's seeds (dB: the log
    of the ratio of the sides' geometric-mean energies, which a few high-contrast seeds sway less
    than a ratio of arithmetic means).  Energies see a change of contrast (a generator swap), but
    vary between faces by ~60 %; a ratio cancels the contrast and keeps the spectrum's *shape*,
    which the upscaler, denoiser or generator sets (the top/high luma ratio of a 64->256 upscale
    varies by ~1 % between faces).  Permutation max-T over the family.  The floor is the visible
    change of the (numerator) band's energy.
every slice of ``harness.measure``
    Welch statistics of the mean difference (circular slices unwrapped around the pooled
    circular mean), permutation max-T over every gating slice of the group
    (:func:`~harness.comparing.seedtests.max_t`).

**Power.**  Every check carries ``min_detectable`` -- the smallest drift (in its own units:
degrees, dB, slice units) it detects with probability ``power`` at its family's level --
and ``seeds`` (``[baseline, candidate]``).  Two ``power`` checks say whether the group could
see the suite's target drifts (``[distribution]``: ``detect_hue_deg``, ``detect_band_rel``):
the hue check's ``min_detectable`` and the most sensitive band check's, with the seed count per
side that would reach the target when it does not (``SE`` extrapolated as ``1/sqrt(n)``).
``value`` is the smallest detectable drift (degrees; band: percent), ``baseline`` the target;
with ``require_power`` one that falls short fails, otherwise it passes and says so.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from harness.comparing.checks import Check, DistributionCheck
from harness.comparing.engine import (_boxes, _check_comparable, _checks, _lsb, _statuses, _tile_chroma,
                                     _visible)
from harness.comparing.seedtests import (PERMUTATIONS, hue_spectra, hue_t, max_t, mc_critical, min_detectable,
                                         permuted_hue_t, relabellings, seeds_needed, z_power)
from harness.comparing.tolerance import CompareConfig, tolerance_arrays, visibility_tolerance
from harness.measuring.metrics.color import HUE_BINS, circular_delta
from harness.measuring.metrics.noise import HUE_MIN_CHROMA
from harness.measuring.result import Measurement

__all__ = ["DistributionCheck", "compare_distribution", "FAMILIES", "FAMILY_SHARE", "HUE_SLICE", "BAND_METRIC",
           "POWER_METRIC"]

FAMILIES = ("hue", "band", "slices")
#: Each family's share of the group's ``alpha`` (they sum to 1: Bonferroni across families).
FAMILY_SHARE = {"hue": 2.0 / 3.0, "band": 1.0 / 6.0, "slices": 1.0 / 6.0}
HUE_SLICE = "pooled rotation"
BAND_METRIC = "band"
POWER_METRIC = "power"
_BANDS = ("low", "mid", "high", "top")
_DB = 10.0 / math.log(10.0)


def _default_dist():
    """A suite's default ``[distribution]`` table, power reported but not required: a direct call
    (the API, ``harness compare --mode distribution``) has no suite that declared the targets."""
    from dataclasses import replace

    from harness.comparing.settings import DistributionConfig

    return replace(DistributionConfig(), require_power=False)


def compare_distribution(baselines: Sequence[Measurement], candidates: Sequence[Measurement],
                         config: CompareConfig | None = None, dist: Any = None, *,
                         n_perm: int = PERMUTATIONS) -> list[Check]:
    """Compare candidate seeds with baseline seeds: hue, band and slice checks, then the power checks.

    ``dist`` is a suite's ``[distribution]`` table (:class:`harness.comparing.settings.DistributionConfig`:
    ``alpha``, ``power``, ``detect_hue_deg``, ``detect_band_rel``, ``require_power``); when None,
    its defaults with ``require_power = False`` (the power checks say what the seeds can see, and
    pass).  ``n_perm``: relabellings drawn per family (all of them when there are
    fewer).  Raises ``ValueError`` for fewer than 2 baseline or 1 candidate seed, or
    measurements of different sizes or tile grids.
    """
    config = config or CompareConfig()
    dist = dist if dist is not None else _default_dist()
    if len(baselines) < 2:
        raise ValueError(f"distribution mode needs at least 2 baseline seeds, got {len(baselines)}")
    if len(candidates) < 1:
        raise ValueError("distribution mode needs at least 1 candidate seed")
    ref = baselines[0]
    for m in list(baselines[1:]) + list(candidates):
        _check_comparable(ref, m)
    nb, nc = len(baselines), len(candidates)
    alpha = {f: float(dist.alpha) * FAMILY_SHARE[f] for f in FAMILIES}
    perms = relabellings(nb, nc, n_perm)
    seeds = (nb, nc)
    hue = _hue_check(baselines, candidates, config, alpha["hue"], dist.power, perms, seeds)
    bands = _band_checks(baselines, candidates, alpha["band"], dist.power, perms, seeds)
    slices = _slice_checks(baselines, candidates, config, alpha["slices"], dist.power, perms, seeds)
    power = _power_checks(hue, bands, dist, alpha, seeds)
    return ([hue] if hue is not None else []) + bands + slices + power


# -- hue ---------------------------------------------------------------------------------------

def _histograms(ms: Sequence[Measurement], tiles: bool) -> np.ndarray | None:
    """Per-seed hue histograms: ``meta["hue_hist"]``, or (``tiles``) the tiles' chroma vectors binned."""
    out = []
    for m in ms:
        if not tiles:
            h = np.asarray(m.meta.get("hue_hist", ()), float)
            if h.shape != (HUE_BINS,) or not np.all(np.isfinite(h)):
                return None
            out.append(h)
            continue
        tc = _tile_chroma(m)
        if tc is None or not tc[0]:
            return None
        z = tc[1] + 1j * tc[2]
        idx = np.floor(np.mod(np.angle(z, deg=True), 360.0) / (360.0 / HUE_BINS)).astype(int) % HUE_BINS
        out.append(np.bincount(idx, weights=np.abs(z), minlength=HUE_BINS) / len(z))
    return np.array(out)


def _hue_check(baselines, candidates, config, alpha, power, perms, seeds) -> DistributionCheck | None:
    nb = len(baselines)
    tiles = False
    hb, hc = _histograms(baselines, False), _histograms(candidates, False)
    if hb is None or hc is None:
        tiles = True
        hb, hc = _histograms(baselines, True), _histograms(candidates, True)
        if hb is None or hc is None:
            return None
    slice_ = HUE_SLICE + (" (tiles)" if tiles else "")
    _spec, abs_t, _rel, dirs, gate = tolerance_arrays("hue", [slice_], config)
    h = np.concatenate([hb, hc])
    # a seed whose mean chroma is below the hue noise floor has no hue to vote with
    vote = h.sum(axis=1) >= HUE_MIN_CHROMA / 4.0
    if vote[:nb].sum() < 2 or vote[nb:].sum() < 1:
        return DistributionCheck("hue", slice_, None, 0.0, None, 180.0, "skip", seeds=seeds,
                                 note="the images have (almost) no colour: hue is undefined")
    spectra = hue_spectra(h, HUE_MIN_CHROMA / 4.0)
    observed = np.zeros((1, len(h)))
    observed[0, nb:] = 1.0
    rot, se, df = (float(v[0]) for v in hue_t(spectra, observed, nb))
    crit = mc_critical(permuted_hue_t(spectra, perms, nb), alpha)
    how = "permutation test of the studentised pooled rotation"
    if not math.isfinite(crit):
        from scipy import stats

        crit = float(stats.t.ppf(1.0 - alpha / 2.0, max(df, 1.0)))
        how = "Welch t on the seeds' rotation scores (too few seeds for a permutation test)"
    tol = max(float(abs_t[0]), crit * se)
    md = (crit + z_power(power)) * se
    st = _statuses(np.array([rot]), np.array([tol]), dirs, gate, np.array([math.isfinite(tol)]),
                   np.array([False]))[0]
    return DistributionCheck("hue", slice_, rot, 0.0, rot, tol if math.isfinite(tol) else None, st,
                             min_detectable=md, seeds=seeds, note=how, se=se, crit=crit)


# -- bands -------------------------------------------------------------------------------------

def _band_columns(m: Measurement) -> tuple[list[str], list[tuple[str, int, int | None]]]:
    """Slice names of the band columns and, per column, ``(metric, numerator, denominator)`` indices
    (no denominator: the band's own energy)."""
    names: list[str] = []
    cols: list[tuple[str, int, int | None]] = []
    bp = m.metrics.get("band_power")
    if bp is not None:
        pos = {s: i for i, s in enumerate(bp.slices)}
        for ch in ("Y", "Cb", "Cr"):
            for band in _BANDS:
                if (a := f"band={band} ch={ch}") in pos:
                    names.append(f"pooled {a}")
                    cols.append(("band_power", pos[a], None))
            for lo, hi in zip(_BANDS, _BANDS[1:]):
                a, b = f"band={hi} ch={ch}", f"band={lo} ch={ch}"
                if a in pos and b in pos:
                    names.append(f"pooled band={hi}/{lo} ch={ch}")
                    cols.append(("band_power", pos[a], pos[b]))
    sp = m.metrics.get("spectrum")
    if sp is not None:
        luma = [(i, s) for i, s in enumerate(sp.slices) if s.startswith("ch=Y f=")]
        for (i0, s0), (i1, s1) in zip(luma, luma[1:]):
            names.append(f"pooled ch=Y f={s1[len('ch=Y f='):]}/{s0[len('ch=Y f='):]}")
            cols.append(("spectrum", i1, i0))
    return names, cols


def _band_values(ms: Sequence[Measurement], cols) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: energy or energy ratio (dB), its noise std (dB), and the numerator's energy."""
    tiny = 1e-9
    ratio, noise, num = [], [], []
    for m in ms:
        r, e, p = [], [], []
        for metric, i, j in cols:
            mv = m.metrics[metric]
            a = max(float(mv.values[i]), tiny)
            b = max(float(mv.values[j]), tiny) if j is not None else 1.0
            r.append(_DB * math.log(a / b))
            e.append(_DB * math.hypot(mv.std[i] / a, mv.std[j] / b if j is not None else 0.0))
            p.append(a)
        ratio.append(r), noise.append(e), num.append(p)
    return np.array(ratio), np.array(noise), np.array(num)


def _band_checks(baselines, candidates, alpha, power, perms, seeds) -> list[DistributionCheck]:
    names, cols = _band_columns(baselines[0])
    if not names or any(_band_columns(m)[0] != names for m in (*baselines, *candidates)):
        return []
    nb = len(baselines)
    ratio, noise, num = _band_values([*baselines, *candidates], cols)
    if not np.all(np.isfinite(ratio)):
        return [DistributionCheck(BAND_METRIC, s, None, None, None, None, "error", seeds=seeds) for s in names]
    res = max_t(ratio[:nb], ratio[nb:], alpha, noise.mean(axis=0), perms=perms)
    bmean, cmean = ratio[:nb].mean(axis=0), ratio[nb:].mean(axis=0)
    # the floor: the visible change of the numerator band's energy (amplitude model), in dB
    pb = np.exp(np.log(num[:nb]).mean(axis=0))
    pc = np.exp(np.log(num[nb:]).mean(axis=0))
    lsb = _lsb(*baselines, *candidates)
    vis = visibility_tolerance("amplitude", pb, pc, lsb)
    floor = _DB * np.log1p(vis / np.maximum(0.5 * (pb + pc), 1e-12))
    tol = np.maximum(floor, res.crit * res.se)
    md = min_detectable(res.crit, res.se, power)
    delta = cmean - bmean
    finite = np.isfinite(tol)
    st = _statuses(delta, tol, np.zeros(len(names), int), np.ones(len(names), bool), finite,
                   np.zeros(len(names), bool))
    note = f"max-T over {len(names)} band ratios ({res.method}); visible change {{:.2g}} dB"
    return [DistributionCheck(BAND_METRIC, s, c.value, c.baseline, c.delta, c.tolerance, c.status,
                              min_detectable=float(m), seeds=seeds, note=note.format(f), se=float(e), crit=res.crit)
            for s, c, m, f, e in zip(names, _checks(BAND_METRIC, names, cmean, bmean, delta, tol, st,
                                                    [None] * len(names)), md.tolist(), floor.tolist(),
                                     res.se.tolist())]


# -- every slice -------------------------------------------------------------------------------

def _slice_checks(baselines, candidates, config, alpha, power, perms, seeds) -> list[Check]:
    ref = baselines[0]
    every = (*baselines, *candidates)
    nb = len(baselines)
    blocks = []  # (metric, slices, spec, x, std, bias, abs_t, rel_t, dirs, gate, centre)
    checks: list[Check] = []
    for metric, b0 in ref.metrics.items():
        if any(metric not in m.metrics or m.metrics[metric].slices != b0.slices for m in every):
            checks += [Check(metric, s, None, None, None, None, "error", bx)
                       for s, bx in zip(b0.slices, ref.boxes(b0.slices))]
            continue
        slices = list(b0.slices)
        spec, abs_t, rel_t, dirs, gate = tolerance_arrays(metric, slices, config)
        x = np.stack([m.metrics[metric].values for m in every])
        centre = None
        if spec.period:  # unwrap around the pooled circular mean (the same under any relabelling)
            ang = x * (2.0 * np.pi / spec.period)
            centre = np.mod(np.arctan2(np.sin(ang).mean(0), np.cos(ang).mean(0)) * spec.period / (2 * np.pi),
                            spec.period)
            x = circular_delta(x, centre, spec.period)
        blocks.append((metric, slices, spec, x, np.stack([m.metrics[metric].std for m in every]),
                       np.stack([m.metrics[metric].bias for m in every]).max(axis=0), abs_t, rel_t, dirs, gate,
                       centre))
    if not blocks:
        return checks
    x = np.concatenate([b[3] for b in blocks], axis=1)
    std = np.concatenate([b[4] for b in blocks], axis=1)
    finite = np.all(np.isfinite(x), axis=0) & np.all(np.isfinite(std), axis=0)
    undefined = np.concatenate([(b[5] >= b[2].period / 2.0) if b[2].period else np.zeros(len(b[1]), bool)
                                for b in blocks])
    family = np.concatenate([b[9] for b in blocks]) & finite & ~undefined
    xs = np.where(finite, x, 0.0)
    res = max_t(xs[:nb], xs[nb:], alpha, np.sqrt(np.mean(np.where(finite, std, 0.0) ** 2, axis=0)),
                family=family, perms=perms)
    md_all = min_detectable(res.crit, res.se, power)
    lsb = _lsb(*every)
    note = f"max-T over {int(family.sum())} slices ({res.method})"
    at = 0
    for metric, slices, spec, xb, _std, bias, abs_t, rel_t, dirs, gate, centre in blocks:
        sl = slice(at, at + len(slices))
        at += len(slices)
        bmean, cmean = xb[:nb].mean(axis=0), xb[nb:].mean(axis=0)
        delta = res.delta[sl]
        if spec.period:
            bmean, cmean = np.mod(bmean + centre, spec.period), np.mod(cmean + centre, spec.period)
            scale = np.zeros(len(slices))
        else:
            scale = 0.5 * (np.abs(bmean) + np.abs(cmean))
        visible = _visible(spec, metric, slices, bmean, cmean, lsb, config)
        floor = np.maximum(np.maximum(abs_t, rel_t * scale), visible) + bias
        tol = np.maximum(floor, res.crit * res.se[sl]) if math.isfinite(res.crit) else np.full(len(slices), np.inf)
        fin = finite[sl] & np.isfinite(floor)
        st = _statuses(delta, np.where(fin, tol, np.inf), dirs, gate, fin, undefined[sl])
        base = _checks(metric, slices, cmean, bmean, delta, np.where(np.isfinite(tol), tol, np.nan), st,
                       _boxes(slices, candidates[0], ref))
        checks += [DistributionCheck(c.metric, c.slice, c.value, c.baseline, c.delta, c.tolerance, c.status, c.box,
                                     min_detectable=float(m), seeds=seeds, note=note, se=float(e), crit=res.crit)
                   for c, m, e in zip(base, md_all[sl].tolist(), res.se[sl].tolist())]
    return checks


# -- power -------------------------------------------------------------------------------------

def _have(seeds: tuple[int, int]) -> str:
    nb, nc = seeds
    return f"have {nc}" if nb == nc else f"have {nb}+{nc}"


def _power_check(what: str, check: DistributionCheck, target: float, units: str, seeds, dist,
                 alpha: float, n_cols: int, to_units=lambda v: v) -> DistributionCheck:
    md = check.min_detectable if check.min_detectable is not None else math.inf
    ok = math.isfinite(md) and md <= target
    value = to_units(md) if math.isfinite(md) else None
    base = to_units(target)
    if ok:
        text = f"{what} detectable, {_have(seeds)} seeds"
    else:
        need = seeds_needed(md, *seeds, target, crit=check.crit if check.crit is not None else math.inf, alpha=alpha,
                            n_cols=n_cols, power=dist.power)
        per_side = "" if seeds[0] == seeds[1] else " per side"
        text = (f"{what} needs {need} seeds{per_side}, {_have(seeds)}" if need
                else f"{what} undetectable, {_have(seeds)} seeds")
    status = "pass" if ok or not dist.require_power else "fail"
    note = (f"smallest drift {check.metric} [{check.slice}] detects with probability {dist.power:g}: "
            + (f"{value:.3g} {units}" if value is not None else "none")
            + ("" if ok or dist.require_power else " (require_power = false: noted, not failed)"))
    return DistributionCheck(POWER_METRIC, text, value, base, None if value is None else value - base, 0.0, status,
                             min_detectable=value, seeds=seeds, note=note)


def _power_checks(hue: DistributionCheck | None, bands: list[DistributionCheck], dist, alpha: dict[str, float],
                  seeds: tuple[int, int]) -> list[DistributionCheck]:
    """The group's power verdicts: the hue check against ``detect_hue_deg``, the most sensitive
    band check against ``detect_band_rel`` (the other band checks' ``min_detectable`` says which
    bands are blind)."""
    out = []
    t = float(dist.detect_hue_deg)
    if hue is not None and hue.status != "skip":
        out.append(_power_check(f"hue rotation {t:g}°", hue, t, "deg", seeds, dist, alpha["hue"], 1))
    usable = [b for b in bands if b.status != "error" and b.min_detectable is not None]
    if usable:
        best = min(usable, key=lambda b: b.min_detectable)
        rel = float(dist.detect_band_rel)
        what = f"band energy {100 * rel:g}% ({best.slice[len('pooled '):]})"
        out.append(_power_check(what, best, _DB * math.log1p(rel), "%", seeds, dist, alpha["band"], len(bands),
                                to_units=lambda v: 100.0 * math.expm1(v / _DB)))
    return out
