"""The comparison engine: measurements against baselines → :class:`Check` results.

One engine serves ``harness compare``, ``harness run`` and the pytest plugin.

Tolerance of a slice (symmetric in baseline and candidate)::

    tol = max(abs_tol, rel_tol * mean(|baseline|, |candidate|), visible(baseline, candidate))
          + max(bias_b, bias_c) + k * sqrt(2) * min(std_b, std_c)

``visible`` is the change a viewer could see at 1:1 under the metric's visibility model
(contrast masking: :mod:`harness.comparing.tolerance`); ``abs_tol``/``rel_tol`` come from
the metric's registry entry unless a rule in :class:`CompareConfig` overrides them
(metrics with a visibility model have none by default); ``bias``/``std`` are the noise floor
each measurement derived (see :mod:`harness.measuring.metrics.noise`).  Under "no
change" both sides share one noise level, so the smaller std (the side a new
peak or a noise burst has not inflated) stands for both.  The metric's
direction decides which sign of ``delta = value - baseline`` can fail.  A
non-finite value anywhere is an ``error``, never a pass.

``distribution`` mode (:mod:`harness.comparing.distribution`) compares each statistic's
distribution over candidate seeds with its distribution over baseline seeds: two-sample
permutation tests with family-wise control, a pooled hue rotation and band-shape checks, and
each check's power (``k`` and ``spread_k`` play no part there).

**Where.**  A check on a spatial slice (a tile, a mask region) carries ``box``,
``(x0, y0, x1, y1)`` in pixels of the measured image (exclusive ends), taken
from the candidate's measurement (the baseline's where the candidate has none):
tile boxes follow from the grid in ``meta``, region boxes from
``meta["region_boxes"]`` (older baselines lack it, and then so do their region
checks unless the candidate has it).  Whole-image checks, and the global
``hue``/``offset`` check, have no box.

**Global hue rotation** (``hue``, slice ``offset``): see :func:`_hue_offset`.

**Additions** judged apart from the slices: noise over the whole image (``noise``,
:mod:`~harness.comparing.added_noise`), micro-tiling (``grid``, :mod:`~harness.comparing.grid`).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from harness.comparing.checks import Check
from harness.comparing.added_noise import LUMA_SLICE, NOISE_METRIC, NOISE_SLICE, added_luma_noise, added_noise
from harness.comparing.grid import GRID_METRIC, grid_checks
from harness.comparing.tolerance import (CompareConfig, ToleranceRule, overridden, tolerance_arrays,
                                        visibility_tolerance)
from harness.measuring.metrics.color import circular_delta
from harness.measuring.metrics.noise import CHROMA_NOISE_COV, HUE_MIN_CHROMA, rotation_noise
from harness.measuring.result import Box, Measurement, MetricValues
from harness.measuring.tiles import cell_sizes
from harness.status import STATUSES, worst

__all__ = ["Check", "ToleranceRule", "CompareConfig", "compare", "compare_paired",
           "summarize_status", "STATUSES"]

# A circular metric whose allowance reaches half its period cannot tell anything apart.
_UNDEFINED = "skip"


def _statuses(delta: np.ndarray, tol: np.ndarray, dirs: np.ndarray, gate: np.ndarray,
              finite: np.ndarray, undefined: np.ndarray) -> list[str]:
    up = delta > tol
    down = -delta > tol
    fail = np.where(dirs == 0, up | down, np.where(dirs == 1, up, down)) & gate
    out = np.where(fail, "fail", "pass").astype(object)
    out[undefined] = _UNDEFINED
    out[~finite] = "error"
    return out.tolist()


def _checks(metric: str, slices: Sequence[str], value: np.ndarray, base: np.ndarray, delta: np.ndarray,
            tol: np.ndarray, statuses: list[str], boxes: Sequence[Box | None]) -> list[Check]:
    def f(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return [Check(metric, s, f(v), f(b), f(d), f(t), st, bx)
            for s, v, b, d, t, st, bx in zip(slices, value.tolist(), base.tolist(), delta.tolist(), tol.tolist(),
                                             statuses, boxes)]


def _boxes(slices: Sequence[str], first: Measurement, second: Measurement | None = None) -> list[Box | None]:
    """Pixel boxes of ``slices`` from ``first`` (the measured candidate), filling gaps from ``second``."""
    out = first.boxes(slices)
    if second is not None and second.box_locations() - first.box_locations():
        other = second.boxes(slices)
        out = [a if a is not None else b for a, b in zip(out, other)]
    return out


def _align(b: MetricValues, c: MetricValues) -> tuple[list[str], np.ndarray, np.ndarray, list[str], list[str]]:
    """Slices common to both (in baseline order) with index arrays; plus one-sided slices."""
    if b.slices == c.slices:
        idx = np.arange(len(b.slices))
        return list(b.slices), idx, idx, [], []
    cpos = {s: i for i, s in enumerate(c.slices)}
    common = [s for s in b.slices if s in cpos]
    bi = np.array([i for i, s in enumerate(b.slices) if s in cpos], dtype=int)
    ci = np.array([cpos[s] for s in common], dtype=int)
    only_b = [s for s in b.slices if s not in cpos]
    bset = set(b.slices)
    only_c = [s for s in c.slices if s not in bset]
    return common, bi, ci, only_b, only_c


def _missing(metric: str, only_b: Sequence[str], only_c: Sequence[str], baseline: Measurement,
             candidate: Measurement) -> list[Check]:
    out = [Check(metric, s, None, None, None, None, "error", bx) for s, bx in zip(only_b, baseline.boxes(only_b))]
    out += [Check(metric, s, None, None, None, None, "error", bx) for s, bx in zip(only_c, candidate.boxes(only_c))]
    return out


def _check_comparable(a: Measurement, b: Measurement) -> None:
    for key in ("height", "width", "tile"):
        if key in a.meta and key in b.meta and a.meta[key] != b.meta[key]:
            raise ValueError(f"measurements differ in {key} ({a.meta[key]} vs {b.meta[key]}): not comparable")


def compare_paired(baseline: Measurement, candidate: Measurement, config: CompareConfig | None = None) -> list[Check]:
    """Compare two measurements of the same input and seed, slice by slice.

    Returns checks in a stable order (metric, then slice order of the baseline);
    sort by :attr:`Check.severity` for a worst-first view.  Slices present on
    one side only are ``error`` checks.
    """
    config = config or CompareConfig()
    _check_comparable(baseline, candidate)
    lsb = _lsb(baseline, candidate)
    checks: list[Check] = []
    for metric in list(baseline.metrics) + [m for m in candidate.metrics if m not in baseline.metrics]:
        if metric not in candidate.metrics or metric not in baseline.metrics:
            owner = baseline if metric in baseline.metrics else candidate
            side = owner.metrics[metric]
            checks += [Check(metric, s, None, None, None, None, "error", bx)
                       for s, bx in zip(side.slices, owner.boxes(side.slices))]
            continue
        b, c = baseline.metrics[metric], candidate.metrics[metric]
        slices, bi, ci, only_b, only_c = _align(b, c)
        spec, abs_t, rel_t, dirs, gate = tolerance_arrays(metric, slices, config)
        bv, cv = b.values[bi], c.values[ci]
        if spec.period:
            delta = circular_delta(cv, bv, spec.period)
        else:
            delta = cv - bv
        scale = 0.5 * (np.abs(bv) + np.abs(cv)) if not spec.period else np.zeros_like(bv)
        bias = np.maximum(b.bias[bi], c.bias[ci])
        # Under "no change" both sides share one noise level; the smaller estimate is the
        # unchanged one (a new peak or a noise burst inflates its own std), so use it twice.
        visible = _visible(spec, metric, slices, bv, cv, lsb, config)
        tol = (np.maximum(np.maximum(abs_t, rel_t * scale), visible) + bias
               + config.k * np.sqrt(2.0) * np.minimum(b.std[bi], c.std[ci]))
        finite = np.isfinite(bv) & np.isfinite(cv) & np.isfinite(tol)
        undefined = (bias >= spec.period / 2.0) if spec.period else np.zeros(len(slices), bool)
        checks += _checks(metric, slices, cv, bv, delta, tol, _statuses(delta, tol, dirs, gate, finite, undefined),
                          _boxes(slices, candidate, baseline))
        checks += _missing(metric, only_b, only_c, baseline, candidate)
    hue = _hue_offset(baseline, candidate, config)
    noise = added_noise(baseline, candidate, config, lsb)
    luma = added_luma_noise(baseline, candidate, config, lsb)
    added = [(NOISE_METRIC, NOISE_SLICE, *noise)] if noise is not None else []
    added += [(NOISE_METRIC, LUMA_SLICE, *luma)] if luma is not None else []
    added += [(GRID_METRIC, *g) for g in grid_checks(baseline.meta, candidate.meta, config, lsb)]
    return checks + ([hue] if hue is not None else []) + [_derived(*a, config) for a in added]


def _derived(metric: str, slice_: str, value: float, tol: float, config: CompareConfig) -> Check:
    """A whole-image check computed from both sides (value = delta, baseline 0); NaN is an error."""
    ok = math.isfinite(value) and math.isfinite(tol)
    _spec, _abs, _rel, dirs, gate = tolerance_arrays(metric, [slice_], config)
    st = _statuses(np.array([value]), np.array([tol]), dirs, gate, np.array([ok]), np.array([False]))[0]
    return Check(metric, slice_, *((value, 0.0, value, tol) if ok else (None,) * 4), st)


def _lsb(*ms: Measurement) -> float:
    """One quantisation step (code values) of the measured images: the coarsest, 1 where meta lacks it."""
    steps = []
    for m in ms:
        try:
            v = float(m.meta.get("lsb", 1.0))
        except (TypeError, ValueError):
            v = 1.0
        steps.append(v if math.isfinite(v) and v > 0 else 1.0)
    return max(steps, default=1.0)


def _visible(spec, metric: str, slices: Sequence[str], bv: np.ndarray, cv: np.ndarray, lsb: float,
             config: CompareConfig) -> np.ndarray:
    """The metric's visibility allowance per slice; 0 where a rule set ``abs_tol``/``rel_tol``."""
    if spec.visibility is None or spec.period:
        return np.zeros(len(slices))
    visible = visibility_tolerance(spec.visibility, bv, cv, lsb)
    if config.rules:
        visible = np.where(overridden(metric, slices, config), 0.0, visible)
    return visible


def _tile_chroma(m: Measurement) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray] | None:
    """Per-tile mean chroma from the ``mean`` metric: ``(tiles, cb, cr, std of the Cb mean)``."""
    mv = m.metrics.get("mean")
    if mv is None:
        return None
    cb: dict[str, float] = {}
    cr: dict[str, float] = {}
    sd: dict[str, float] = {}
    for s, v, e in zip(mv.slices, mv.values.tolist(), mv.std.tolist()):
        if s.startswith("tile="):
            t, _, ch = s.partition(" ")
            if ch == "ch=Cb":
                cb[t], sd[t] = v, e
            elif ch == "ch=Cr":
                cr[t] = v
    tiles = [t for t in cb if t in cr]
    return tiles, np.array([cb[t] for t in tiles]), np.array([cr[t] for t in tiles]), np.array([sd[t] for t in tiles])


def _grid_of(tiles: Sequence[str], meta: Mapping[str, Any]) -> tuple[np.ndarray, tuple, tuple] | None:
    """Row-major order of ``tiles`` on the grid ``meta`` describes, and its cell sizes; None if they do not fit."""
    try:
        h, w, stride = int(meta["height"]), int(meta["width"]), int(meta["stride"])
        rows, cols = (int(x) for x in meta["tiles"])
        ry, rx = cell_sizes(h, w, stride)
        rc = [t[len("tile=r"):].split("c") for t in tiles]
        flat = np.array([int(r) * cols + int(c) for r, c in rc], dtype=int)
    except (KeyError, TypeError, ValueError):
        return None
    if len(tiles) != rows * cols or sorted(flat.tolist()) != list(range(rows * cols)) \
            or len(ry) not in (rows, rows + 1) or len(rx) not in (cols, cols + 1):
        return None
    order = np.empty(rows * cols, dtype=int)
    order[flat] = np.arange(rows * cols)
    return order.reshape(rows, cols), ry, rx


def _rotation_std(tiles: Sequence[str], z: np.ndarray, cb_std: np.ndarray, meta: Mapping[str, Any]) -> float:
    """Std (degrees) of one side's rotation estimate: exact on the grid ``meta`` names, else a bound.

    Without the grid (a hand-made measurement), each tile's mean noise ``sigma/sqrt(n_t)``
    is its ``mean`` std and a pixel lies in at most four tiles, so
    ``var <= 4 lambda_max sum |z_t|² std_t²`` (Cauchy-Schwarz).
    """
    grid = _grid_of(tiles, meta)
    if grid is not None and "sigma" in meta:
        order, ry, rx = grid
        return rotation_noise(z[order], np.array(ry), np.array(rx), float(meta["sigma"]))
    den = float(np.sum(np.abs(z) ** 2))
    if den <= 0.0:
        return math.inf
    lam = float(np.linalg.eigvalsh(CHROMA_NOISE_COV)[-1])
    return math.degrees(math.sqrt(4.0 * lam * float(np.sum(np.abs(z) ** 2 * cb_std ** 2))) / den)


def _hue_offset(baseline: Measurement, candidate: Measurement, config: CompareConfig) -> Check | None:
    """Global hue rotation ``hue``/``offset``: the least-squares rotation between the tile chroma vectors.

    With ``b_t``, ``c_t`` the mean chroma ``Cb + i Cr`` of tile ``t`` in baseline and
    candidate, the rotation ``theta`` minimising ``sum |c_t - e^{i theta} b_t|²`` is
    (Procrustes, about the grey point)::

        delta = arg sum_t conj(b_t) c_t = atan2(sum b x c, sum b . c)

    so every tile votes with weight ``|b_t| |c_t|``: colourful tiles dominate, grey
    ones drop out, and it works when an image's colours average to grey.  The
    allowance is::

        tol = abs_tol + k * sqrt(2) * std

    ``std`` propagates the benign per-pixel noise (variance ``sigma²`` per RGB
    channel, see :mod:`harness.measuring.metrics.noise`) through the tile means
    into the angle -- :func:`~harness.measuring.metrics.noise.rotation_noise`,
    overlap of the half-overlapping tiles included, about ``sigma_c /
    sqrt(N_px mean |z|²)`` -- evaluated on the midpoint ``(b_t + c_t)/2`` so that
    it is symmetric.  There is no systematic term: the systematic parts of a
    benign change (a common offset, a rounding-mode change on R, G and B alike)
    lie on the grey axis and leave Cb, Cr alone.  ``abs_tol`` is the ``hue``
    metric's (1°; a ``hue`` rule for slice ``offset`` overrides it): the rotation
    that counts as a regression however precisely it is measured; it also
    absorbs what the noise model leaves out (clipping at 0/255 under an offset,
    sub-LSB per-channel casts).  The check is ``skip`` when the tiles' RMS
    chroma is below :data:`~harness.measuring.metrics.noise.HUE_MIN_CHROMA`
    (grey and near-grey images: their hue is not defined).
    """
    tb, tc = _tile_chroma(baseline), _tile_chroma(candidate)
    if tb is None or tc is None or tb[0] != tc[0] or not tb[0]:
        return None
    zb = tb[1] + 1j * tb[2]
    zc = tc[1] + 1j * tc[2]
    _spec, abs_t, _rel, dirs, gate = tolerance_arrays("hue", ["offset"], config)
    if not np.all(np.isfinite(zb)) or not np.all(np.isfinite(zc)):
        return Check("hue", "offset", None, None, None, None, "error")
    s = np.sum(np.conj(zb) * zc)
    zm = 0.5 * (zb + zc)
    rms = math.sqrt(float(np.mean(np.abs(zm) ** 2)))
    delta = math.degrees(math.atan2(s.imag, s.real)) if abs(s) > 0 else 0.0
    std = _rotation_std(tb[0], zm, np.minimum(tb[3], tc[3]), baseline.meta)
    tol = float(abs_t[0] + config.k * math.sqrt(2.0) * std)
    undefined = rms < HUE_MIN_CHROMA or not math.isfinite(tol)
    if undefined:
        tol = 180.0
    st = _statuses(np.array([delta]), np.array([tol]), dirs, gate, np.array([True]), np.array([undefined]))[0]
    return Check("hue", "offset", delta, 0.0, delta, tol, st)


def summarize_status(checks: Iterable[Check]) -> str:
    """``error`` if any check errored, else ``fail`` if any failed, else ``pass``."""
    return worst(c.status for c in checks)


def compare(baseline: Any, candidate: Any, *, mask: Any = None, anchors: Any = None,
            config: CompareConfig | None = None, tile: int | None = None, ring: int = 8) -> list[Check]:
    """Compare two images, or two :class:`Measurement` objects, slice by slice (paired mode).

    Images are ``(H, W, 3)`` uint8/uint16 arrays or floats in [0, 1] of the same size; both
    are measured with the same ``mask`` (an ``(H, W)`` array, soft values thresholded at 0.5),
    ``anchors``, ``tile`` and ``ring``.  Returns the checks in a stable order; use
    :func:`summarize_status` for the verdict and :func:`harness.report.text.worst_checks`
    for a worst-first view.
    """
    from harness.measuring.driver import measure

    def as_measurement(x: Any) -> Measurement:
        if isinstance(x, Measurement):
            return x
        return measure(x, mask, anchors=anchors, tile=tile, ring=ring)

    return compare_paired(as_measurement(baseline), as_measurement(candidate), config)
