"""Two-sample tests over seeds: permutation max-T, the pooled hue rotation, and their power.

Everything here works on per-seed values: the rows of ``X`` are seeds, baseline seeds first
(``nb`` rows), then candidate seeds (``nc`` rows).  Under "no change" the seeds of both sides
are draws from one distribution, so they are *exchangeable*: relabelling which ``nc`` rows are
"candidate" leaves the joint distribution unchanged.  A permutation test uses exactly that and
nothing else, so its false-alarm rate is at most ``alpha`` whatever the distribution (heavy
tails, discrete values, correlated slices) -- the property a generative suite needs.

**Max-T** (Westfall & Young 1993, single step): every column gets a Welch statistic
``T = (mean_c - mean_b) / SE``, ``SE = sqrt(s_b^2 / nb + s_c^2 / nc + floor^2 (1/nb + 1/nc))``
(``floor``: the measurement's own noise std, so a constant column has a finite ``T``); the
family's critical value is the ``1 - alpha`` quantile of ``max |T|`` over relabellings.  Every
column is held to that one value, which controls the family-wise error rate over all columns
(correlated ones included: the maximum sees the correlation).  :func:`mc_critical` turns the
relabelled maxima into the Monte-Carlo-exact critical value (the observed labelling counts as
one of them: Phipson & Smyth 2010), :func:`relabellings` enumerates every relabelling when
there are at most ``n_perm`` of them, else draws ``n_perm`` at random (a fixed generator: a
report is reproducible).  When even all relabellings cannot reach ``alpha`` (fewer than
``1/alpha`` of them: 5 + 5 seeds at alpha = 0.0033), :func:`max_t` falls back to Welch's t with
Bonferroni over the columns (Welch-Satterthwaite degrees of freedom): valid for roughly normal
columns, and the power check then says how many seeds would do better.

**Power.**  A column whose true shift is ``d`` is detected with probability ``power`` when
``d >= (crit + z_power) * SE`` (the normal approximation of ``T`` at the alternative):
:func:`min_detectable`.  ``SE`` shrinks like ``1/sqrt(n)``: :func:`seeds_needed` extrapolates
it to the smallest number of seeds per side that reaches a target drift.

**Hue rotation** (:func:`hue_rotation`): each seed's chroma-weighted hue histogram
(``meta["hue_hist"]``, :func:`harness.measuring.metrics.color.hue_histogram`), normalised to
unit mass so that every seed weighs the same, is averaged over each side; the rotation is the
lag that maximises the circular cross-correlation of the two pooled histograms (all their
Fourier harmonics, evaluated on a 0.5° grid and refined by a parabola).  Its standard error is
the sandwich (delta-method) one (:func:`hue_t`): the estimate solves ``G(phi) = 0`` with ``G``
bilinear in the two pooled spectra, so each seed's influence is its own term of ``G``;
``SE = sqrt(var(g_b)/nb + var(g_c)/nc) / H`` with ``H`` the curvature of the correlation at the
peak.  Its test is a permutation test of ``|rotation| / SE`` (:func:`permuted_hue_t`).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["relabellings", "mc_critical", "max_t", "MaxT", "min_detectable", "seeds_needed", "z_power",
           "hue_spectra", "hue_rotation", "hue_t", "permuted_hue_t", "PERMUTATIONS", "RNG_SEED"]

#: Relabellings drawn per family when there are more than this many.
PERMUTATIONS = 2000
#: The generator of the drawn relabellings (fixed: the same seeds give the same report).
RNG_SEED = 20240611
_GRID = 720  # hue rotation grid: 0.5 degrees (refined by a parabola)
_CHUNK = 512  # relabellings per block (bounds memory: CHUNK x columns)


def relabellings(nb: int, nc: int, n_perm: int = PERMUTATIONS, seed: int = RNG_SEED) -> np.ndarray:
    """``(P, nb + nc)`` 0/1 float matrix: which rows each relabelling calls "candidate".

    Every relabelling but the observed one when there are at most ``n_perm + 1`` of them (an
    exact test), else ``n_perm`` drawn uniformly (with replacement).
    """
    n = nb + nc
    total = math.comb(n, nc)
    if total - 1 <= n_perm:
        rows = [c for c in combinations(range(n), nc) if c != tuple(range(nb, n))]
        out = np.zeros((len(rows), n))
        for i, c in enumerate(rows):
            out[i, list(c)] = 1.0
        return out
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((n_perm, n)), axis=1)[:, :nc]
    out = np.zeros((n_perm, n))
    np.put_along_axis(out, order, 1.0, axis=1)
    return out


def mc_critical(maxima: np.ndarray, alpha: float) -> float:
    """The critical value of a permutation test from the relabelled statistics ``maxima``.

    Rejecting when the observed statistic is strictly greater keeps the level at most ``alpha``
    (the observed labelling counts as one more relabelling); ``inf`` when ``alpha`` cannot be
    reached with this many relabellings.
    """
    p = len(maxima)
    k = math.floor(alpha * (p + 1) + 1e-9) - 1  # relabellings allowed at or above the observed value
    if k < 0 or p == 0:
        return math.inf
    return float(np.partition(np.asarray(maxima, float), p - 1 - k)[p - 1 - k])


class MaxT(NamedTuple):
    delta: np.ndarray  # mean_c - mean_b per column
    se: np.ndarray  # Welch standard error per column
    crit: float  # the family's critical value of |T|
    method: str  # "permutation" or "welch-bonferroni"


def _welch(sc: np.ndarray, qc: np.ndarray, tot: np.ndarray, totq: np.ndarray, nb: int, nc: int,
           floor_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(delta, se)`` from the candidate side's sums ``sc`` and sums of squares ``qc``."""
    mc = sc / nc
    mb = (tot - sc) / nb
    vc = np.maximum(qc - nc * mc * mc, 0.0) / (nc - 1) if nc > 1 else None
    vb = np.maximum((totq - qc) - nb * mb * mb, 0.0) / (nb - 1) if nb > 1 else None
    vc = vb if vc is None else vc  # one seed on a side: it borrows the other side's spread
    vb = vc if vb is None else vb
    se = np.sqrt(vb / nb + vc / nc + floor_var * (1.0 / nb + 1.0 / nc))
    return mc - mb, se


def _abs_t(delta: np.ndarray, se: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.abs(delta) / se
    return np.where(se > 0, t, np.where(delta == 0, 0.0, np.inf))


def max_t(xb: np.ndarray, xc: np.ndarray, alpha: float, floor_std: np.ndarray | None = None,
          family: np.ndarray | None = None, perms: np.ndarray | None = None) -> MaxT:
    """Welch statistics of every column and the family's max-T critical value at level ``alpha``.

    ``xb`` ``(nb, S)``, ``xc`` ``(nc, S)``: per-seed values; ``family`` (bool ``(S,)``, default
    all): the columns the maximum runs over (the others get the same critical value but do not
    raise it); ``perms``: :func:`relabellings` of ``nb + nc`` rows (made here when None).
    """
    nb, nc = len(xb), len(xc)
    x = np.concatenate([xb, xc]).astype(np.float64)
    s = x.shape[1]
    family = np.ones(s, bool) if family is None else np.asarray(family, bool)
    floor_var = np.zeros(s) if floor_std is None else np.asarray(floor_std, float) ** 2
    x = x - x.mean(axis=0)  # centred on the pooled mean (relabelling-invariant): exact sums of squares
    x2 = x * x
    tot, totq = x.sum(axis=0), x2.sum(axis=0)
    delta, se = _welch(x[nb:].sum(axis=0), x2[nb:].sum(axis=0), tot, totq, nb, nc, floor_var)
    fam = np.flatnonzero(family)
    if fam.size == 0:
        return MaxT(delta, se, math.inf, "permutation")
    perms = relabellings(nb, nc) if perms is None else perms
    # relabelled sums in float32 on columns scaled to unit pooled spread (T is scale-free): ~4x faster,
    # and the observed statistics above stay float64
    scale = np.sqrt(totq[fam] / len(x))
    scale = np.where(scale > 0, scale, 1.0)
    xf = (x[:, fam] / scale).astype(np.float32)
    x2f = xf * xf
    totf, totqf = xf.sum(axis=0), x2f.sum(axis=0)
    fvf = (floor_var[fam] / scale ** 2).astype(np.float32)
    ind32 = perms.astype(np.float32)
    maxima = np.empty(len(perms))
    for i in range(0, len(perms), _CHUNK):
        ind = ind32[i:i + _CHUNK]
        d, e = _welch(ind @ xf, ind @ x2f, totf, totqf, nb, nc, fvf)
        maxima[i:i + _CHUNK] = _abs_t(d, e).max(axis=1)
    crit = mc_critical(maxima, alpha)
    if math.isfinite(crit):
        return MaxT(delta, se, crit, "permutation")
    # too few relabellings to reach alpha: Welch t with Bonferroni over the family
    df = _welch_df(x[:nb], x[nb:])
    df_f = float(np.nanmin(df[fam])) if np.any(np.isfinite(df[fam])) else 1.0
    crit = float(stats.t.ppf(1.0 - alpha / (2.0 * fam.size), max(df_f, 1.0)))
    return MaxT(delta, se, crit, "welch-bonferroni")


def _welch_df(xb: np.ndarray, xc: np.ndarray) -> np.ndarray:
    nb, nc = len(xb), len(xc)
    if min(nb, nc) < 2:  # one side's spread is borrowed from the other: that side's degrees of freedom
        return np.full(xb.shape[1], float(max(nb, nc) - 1))
    vb = xb.var(axis=0, ddof=1) / nb
    vc = xc.var(axis=0, ddof=1) / nc
    num = (vb + vc) ** 2
    den = (vb ** 2 / (nb - 1) if nb > 1 else 0.0) + (vc ** 2 / (nc - 1) if nc > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, float(nb + nc - 2))


def z_power(power: float) -> float:
    """The standard normal quantile of ``power`` (0.84 for 0.8)."""
    return float(stats.norm.ppf(power))


def min_detectable(crit: float, se: np.ndarray | float, power: float) -> np.ndarray | float:
    """The smallest true shift detected with probability ``power``: ``(crit + z_power) * SE``."""
    return (crit + z_power(power)) * np.asarray(se, float) if math.isfinite(crit) else np.full_like(
        np.asarray(se, float), math.inf)


def seeds_needed(min_det: float, nb: int, nc: int, target: float, *, crit: float, alpha: float, n_cols: int = 1,
                 power: float = 0.8, limit: int = 1_000_000) -> int | None:
    """Smallest number of seeds per side at which a drift of ``target`` is detected with ``power``.

    ``min_det = (crit + z_power) * SE`` is what the check detects now; ``SE`` is extrapolated as
    ``SE * sqrt(n_eq / n)`` (``n_eq = 2 / (1/nb + 1/nc)``, the equal split with the same ``SE``)
    and the critical value as Student t's at ``2n - 2`` degrees of freedom (Bonferroni over
    ``n_cols`` columns at level ``alpha``), scaled by how much heavier than that the current one
    is (a permutation distribution's tails; at most 1.5x).  More than the current ``n_eq``
    whenever ``min_det > target``.  None when nothing is known (``min_det`` or ``crit`` not
    finite) or ``limit`` seeds are not enough.
    """
    if not (math.isfinite(min_det) and math.isfinite(crit) and target > 0):
        return None
    zp = z_power(power)
    se = min_det / (crit + zp)
    n_eq = 2.0 / (1.0 / nb + 1.0 / nc)

    def t_crit(n: float) -> float:
        return float(stats.t.ppf(1.0 - alpha / (2.0 * n_cols), max(2.0 * n - 2.0, 1.0)))

    kappa = min(max(crit / t_crit(n_eq), 1.0), 1.5)

    def enough(n: int) -> bool:
        return (kappa * t_crit(n) + zp) * se * math.sqrt(n_eq / n) <= target

    lo = math.floor(n_eq) + 1 if min_det > target else 2
    if not enough(max(lo, limit)):
        return None
    hi = max(lo, limit)
    while lo < hi:  # enough() is monotone in n
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid + 1, hi)
    return lo


# -- hue rotation -----------------------------------------------------------------------------

def hue_spectra(hists: np.ndarray, min_mass: float = 0.0) -> np.ndarray:
    """``(n, K)`` complex: harmonics ``1..K`` of each seed's hue histogram, normalised to unit mass.

    A seed whose histogram mass (its mean chroma) is at most ``min_mass`` votes with zeros.
    """
    h = np.asarray(hists, float)
    mass = h.sum(axis=1, keepdims=True)
    h = np.where(mass > min_mass, h / np.where(mass > 0, mass, 1.0), 0.0)
    nbins = h.shape[1]
    return np.fft.rfft(h, axis=1)[:, 1:(nbins + 1) // 2]  # drop the mass (k=0) and a Nyquist term


def hue_rotation(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Rotation (degrees, in [-180, 180)) of pooled spectra ``c`` relative to ``b`` (``(..., K)`` each).

    Maximises ``F(psi) = sum_k Re(C_k conj(B_k) e^{i k psi})`` (the circular cross-correlation
    of the histograms) over a 0.5° grid, refined by a parabola through the peak and its
    neighbours.  A rotation of every hue by ``t`` multiplies ``C_k`` by ``e^{-i k t}``.
    """
    p = c * np.conj(b)
    spec = np.zeros(p.shape[:-1] + (_GRID // 2 + 1,), complex)
    spec[..., 1:p.shape[-1] + 1] = p  # irfft: (2/M) sum_k Re(X_k e^{2 pi i k m / M}), i.e. F on the grid
    f = np.fft.irfft(spec, _GRID, axis=-1)
    m = np.argmax(f, axis=-1)
    fm = np.take_along_axis(f, m[..., None], -1)[..., 0]
    fl = np.take_along_axis(f, ((m - 1) % _GRID)[..., None], -1)[..., 0]
    fr = np.take_along_axis(f, ((m + 1) % _GRID)[..., None], -1)[..., 0]
    den = fl - 2.0 * fm + fr
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (fl - fr) / den, 0.0)
    deg = (m + np.clip(off, -0.5, 0.5)) * (360.0 / _GRID)
    return np.mod(deg + 180.0, 360.0) - 180.0


def hue_t(spectra: np.ndarray, ind: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotation (degrees), its sandwich SE (degrees) and Welch degrees of freedom, per labelling.

    ``spectra``: :func:`hue_spectra` of every seed (baseline rows first); ``ind`` ``(P, N)``: 0/1
    rows saying which seeds are "candidate" (``nc`` ones each).  With ``P_k = C_k conj(B_k)
    e^{i k phi}`` at the estimate the peak solves ``G = sum_k k Im P_k = 0``; ``G`` is linear in
    each side's mean spectrum, so a seed's influence is its own term (baseline seed ``i``:
    ``g_i = sum_k k Im(C_k conj(b_ik) e^{i k phi})``, candidate seed ``j``: ``g_j = sum_k k
    Im(c_jk conj(B_k) e^{i k phi})``) and ``dphi = -dG / H``, ``H = sum_k k^2 Re P_k`` (the
    curvature at the peak): ``SE = sqrt(var(g_b)/nb + var(g_c)/nc) / H``.  Studentising every
    relabelling by its own SE keeps the permutation critical value near the normal one even when
    the two sides differ (Janssen 1997), so ``(crit + z) * SE`` is a fair power figure.
    """
    n = spectra.shape[0]
    nc = n - nb
    ind = np.asarray(ind, float)
    k = np.arange(1, spectra.shape[1] + 1)
    a = spectra * k  # (N, K)
    sc = ind @ spectra
    cm, bm = sc / nc, (spectra.sum(axis=0) - sc) / nb
    rot = hue_rotation(bm, cm)
    e = np.exp(1j * np.radians(rot))[:, None] ** k  # (P, K)
    gc = np.imag((np.conj(bm) * e) @ a.T)  # (P, N): each seed's score as a candidate
    gb = np.imag((cm * e) @ np.conj(a).T)  # ... and as a baseline seed
    h = np.sum(k * k * np.real(cm * np.conj(bm) * e), axis=1)
    out = 1.0 - ind

    def side_var(g: np.ndarray, w: np.ndarray, m: int) -> np.ndarray:
        if m < 2:
            return np.full(len(g), np.nan)
        mean = (w * g).sum(axis=1) / m
        return np.maximum((w * g * g).sum(axis=1) - m * mean * mean, 0.0) / (m - 1)

    vc, vb = side_var(gc, ind, nc), side_var(gb, out, nb)
    vc = np.where(np.isnan(vc), vb, vc)  # one seed on a side: it borrows the other side's spread
    vb = np.where(np.isnan(vb), vc, vb)
    vb, vc = vb / nb, vc / nc
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(h > 0, np.degrees(np.sqrt(vb + vc) / h), np.inf)
        den = (vb ** 2 / (nb - 1) if nb > 1 else 0.0) + (vc ** 2 / (nc - 1) if nc > 1 else 0.0)
        df = np.where(den > 0, (vb + vc) ** 2 / den, float(n - 2))
    if min(nb, nc) < 2:  # one side's spread is borrowed from the other
        df = np.full(len(rot), float(max(nb, nc) - 1))
    return rot, se, df


def permuted_hue_t(spectra: np.ndarray, perms: np.ndarray, nb: int) -> np.ndarray:
    """``|rotation| / SE`` under each relabelling in ``perms``."""
    out = np.empty(len(perms))
    for i in range(0, len(perms), _CHUNK):
        rot, se, _ = hue_t(spectra, perms[i:i + _CHUNK], nb)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i:i + _CHUNK] = np.where(se > 0, np.abs(rot) / se, np.where(rot == 0, 0.0, np.inf))
    return out
