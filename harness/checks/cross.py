"""Cross-model checks (conditioning drift): the same vector and seed through two pipelines.

A suite's ``[[cross]]`` table (:class:`~harness.suite.suites.CrossCheck`) names two
pipelines ``a`` and ``b``; for every vector and seed that both ran, the image of ``b`` is
compared with the image of ``a`` -- no baseline is involved -- and the result is recorded as
one more case of the run::

    id        vector/a+b/sSEED          (naming.CROSS_SEP; NAME_RE names never hold "+")
    pipeline  "a+b"    seed  SEED       artifacts {"a": <a's image>, "b": <b's image>}
    checks    cross_hue        slice "<stage> a=A b=B"
              cross_hf_energy  slice "<stage> a=A b=B band=high+top ch=Y"

so summary counts, ``harness diff``, the pytest plugin and the exit code see it like any
case.  ``harness bake`` never bakes one (:func:`harness.naming.is_cross`).

**Which image.**  ``stage = "generate"`` compares the ``generate`` artifacts: the generated
base image before the vector's overlays (a prompt vector), or an img2img output.  A side
whose generate stage made no image (a vector with its own source passed through, or no
generate stage) has nothing to compare: when neither side generated, the entry is ``skip``
with that reason (comparing the identical inputs would be a pass that says nothing; use
``stage = "output"`` to compare final images); when only one did, it is an ``error``.
``stage = "output"`` compares the final images.  A side that is missing, errored, or whose
image cannot be read makes the entry an ``error``, never a pass; so do images of different
sizes.

**cross_hue** (degrees): the hue of ``b``'s mean chroma vector ``mean(Cb) + i mean(Cr)``
(BT.601, every pixel's hue weighted by its chroma, as the ``hue`` metric) relative to
``a``'s, wrapped into [-180, 180).  ``baseline``/``value`` are the hues of a/b, ``delta``
the offset, ``tolerance`` the table's ``max_hue_deg``.  When either mean chroma vector is
shorter than :data:`~harness.measuring.metrics.noise.HUE_MIN_CHROMA` code values (grey and
near-grey images, or colours that cancel) the hue is undefined: the check is ``skip`` with
``delta`` None, never a failure made of noise.

**cross_hf_energy** (relative): the luma energy of the measuring bands ``high`` + ``top``
(:mod:`harness.measuring.bands`: everything above 1/4 cycle/px, with a raised-cosine ramp
from 1/8), as mean-square code values per pixel, of a mirror-extended image (no wrap-around
edge), *at the content's scale*: a generator's 64 px output resized to 256 px has nothing but
quantisation above 1/8 cycle/px, so the bands are taken at ``f x u`` where ``u`` (1, 2, 4, 8:
:func:`common_scale`: the sharper side's) is how much larger the image is than its content
-- the top octave of what the models drew (``config["measured"]["hf_scale"]``).
``baseline``/``value`` are a's/b's energy, ``delta = E_b / E_a - 1`` (negative: b is
softer), ``tolerance`` the table's ``max_hf_rel``.  Energies below the quantisation floor
``BENIGN_LSB² x`` band gain are not detail: when both are, the check is ``skip``; otherwise
the denominator is at least that floor.

An entry whose checks are all ``skip`` is ``skip``; otherwise the worst check decides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.measuring.hue import code_values, hue_offset, mean_chroma
from harness.measuring.spectrum import common_scale, hf_energy, luma_spectrum
from harness.naming import case_id, cross_pipeline
from harness.status import worst

if TYPE_CHECKING:
    from harness.comparing.engine import Check
    from harness.suite.suites import Case, CrossCheck, Suite
    from harness.report.schema import CaseResult

__all__ = ["CrossPair", "Side", "plan_cross", "cross_checks", "judge_cross", "record_cross"]



@dataclass(frozen=True)
class CrossPair:
    """One cross entry: ``check`` for ``vector`` and ``seed``, its two sides' cases."""

    check: CrossCheck
    a: Case
    b: Case

    @property
    def vector(self) -> str:
        return self.a.vector

    @property
    def seed(self) -> int:
        return self.a.seed

    @property
    def pipeline(self) -> str:
        return cross_pipeline(self.check.a, self.check.b)

    @property
    def id(self) -> str:
        return case_id(self.vector, self.pipeline, self.seed)


def plan_cross(suite: Suite, cases: Sequence[Case]) -> tuple[list[CrossPair], list[str]]:
    """The cross entries of ``suite`` whose two sides are both among ``cases`` (the run's
    selection, in order), and a note for each entry that has only one side there (a ``-k``
    that selected one pipeline of the pair: that entry is not run)."""
    by_key = {(c.vector, c.pipeline.name, c.seed): c for c in cases}
    pairs, notes = [], []
    for cc in suite.cross:
        keys = dict.fromkeys((c.vector, c.seed) for c in cases if c.pipeline.name in (cc.a, cc.b))
        for vector, seed in keys:
            a, b = by_key.get((vector, cc.a, seed)), by_key.get((vector, cc.b, seed))
            if a is not None and b is not None:
                pairs.append(CrossPair(cc, a, b))
                continue
            have, lack = (cc.a, cc.b) if a is not None else (cc.b, cc.a)
            if any(c.vector == vector and c.pipeline.name == lack for c in suite.cases(seeds=[seed])):
                notes.append(f"cross {case_id(vector, cross_pipeline(cc.a, cc.b), seed)} not run: the selection "
                             f"has only its side {have!r} (-k selected one pipeline of the pair)")
    return pairs, notes


# ==========================================================================================
# the two checks, image to image
# ==========================================================================================
def cross_checks(image_a: np.ndarray, image_b: np.ndarray, cc: CrossCheck, *,
                 slice_base: str | None = None) -> tuple[list[Check], dict[str, Any]]:
    """The ``cross_hue`` and ``cross_hf_energy`` checks of ``image_b`` against ``image_a`` (same
    size), and what they were computed from (``config["measured"]`` of the entry)."""
    from harness.comparing.engine import Check

    base = slice_base or f"{cc.stage} a={cc.a} b={cc.b}"
    ca, cb = code_values(image_a), code_values(image_b)
    if ca.shape != cb.shape:
        raise ValueError(f"the images differ in size ({ca.shape[1]}x{ca.shape[0]} vs {cb.shape[1]}x{cb.shape[0]})")
    za, zb = mean_chroma(ca), mean_chroma(cb)
    ha, hb, off = hue_offset(za, zb)
    tol_h = float(cc.max_hue_deg)
    hue_status = "skip" if off is None else ("fail" if abs(off) > tol_h else "pass")
    (pa, f), (pb, _) = luma_spectrum(ca), luma_spectrum(cb)
    scale = common_scale(pa, pb)  # the top octave of what the sharper side drew
    ea, floor = hf_energy(pa, f, scale)
    eb, _ = hf_energy(pb, f, scale)
    if max(ea, eb) < floor:
        rel, hf_status = None, "skip"
    else:
        rel = (eb - ea) / max(ea, floor)
        hf_status = "fail" if abs(rel) > cc.max_hf_rel else "pass"
    checks = [Check("cross_hue", base, hb, ha, off, tol_h, hue_status),
              Check("cross_hf_energy", f"{base} band=high+top ch=Y", eb, ea, rel, float(cc.max_hf_rel), hf_status)]
    info = {"chroma_a": abs(za), "chroma_b": abs(zb), "hf_floor": floor}
    return checks, {**{k: round(v, 6) for k, v in info.items()}, "hf_scale": scale}


def _beyond(checks: Sequence[Check], cc: CrossCheck) -> str:
    """``b=m1 against a=m0: hue offset +29.99° (max 10°), high-frequency energy -10.4% (max 25%)``."""
    got = {c.metric: c for c in checks}
    hue, hf = got["cross_hue"], got["cross_hf_energy"]
    h = "undefined" if hue.delta is None else f"{hue.delta:+.2f}° (max {cc.max_hue_deg:g}°)"
    e = "undefined" if hf.delta is None else f"{100 * hf.delta:+.1f}% (max {100 * cc.max_hf_rel:g}%)"
    return f"b={cc.b} against a={cc.a} at {cc.stage}: hue offset {h}, high-frequency energy {e}"


def _notes(checks: Sequence[Check], info: Mapping[str, Any]) -> str | None:
    from harness.measuring.metrics.noise import HUE_MIN_CHROMA

    out = []
    for c in checks:
        if c.status != "skip":
            continue
        if c.metric == "cross_hue":
            out.append(f"hue undefined: mean chroma {info['chroma_a']:.2f} (a) / {info['chroma_b']:.2f} (b), "
                       f"below {HUE_MIN_CHROMA:g} code values on a side (near-grey)")
        else:
            out.append(f"high-frequency energy undefined: both sides below the quantisation floor "
                       f"{info['hf_floor']:.3g} code values²")
    return "; ".join(out) or None


# ==========================================================================================
# one entry from the two sides' results
# ==========================================================================================
@dataclass(frozen=True)
class Side:
    """What the cross check needs of one side: its error (None: it ran), artifacts and stage numbers."""

    case_id: str
    error: str | None
    artifacts: Mapping[str, str]
    stages: Mapping[str, float]
    root: Path | None = None  # where its artifacts are, when not in the run folder (then they are copied)

    @classmethod
    def of(cls, case_id: str, result: Any, root: Path | None = None) -> Side | None:
        """From a recorded ``CaseResult`` (errored when its status is ``error``) or a fresh
        ``CaseOutput`` (errored when it has an error); None stays None (no result)."""
        if result is None:
            return None
        status = getattr(result, "status", None)  # CaseResult: a failed case (no baseline...) still ran
        errored = status == "error" if status is not None else bool(result.error)
        return cls(case_id, (result.error or "error") if errored else None, dict(result.artifacts or {}),
                   dict(result.stages or {}), root)


def _image_of(side: Side, case: Case, stage: str) -> str | None:
    """The run-relative image to compare of ``side`` at ``stage``; None: there is none (at
    ``generate``: its generate stage is ``source`` or missing, or said ``generated = 0``)."""
    if stage == "output":
        return side.artifacts.get("output")
    backend = next((s.backend for s in case.pipeline.stages if s.stage == "generate"), None)
    if backend in (None, "source") or side.stages.get("generate.generated", 1.0) == 0.0:
        return None
    return side.artifacts.get("generate")


Resolve = Callable[[str, Path], "Path | None"]


def _in_folder(value: str, root: Path) -> Path | None:
    return root / value


def judge_cross(pair: CrossPair, run_dir: Path, side_a: Side | None, side_b: Side | None,
                resolve: Resolve | None = None) -> CaseResult:
    """The report entry of ``pair``: its two sides' images compared.  An artifact is a path under
    ``run_dir`` (or under a side's own ``root``: that image is then copied to
    ``artifacts/<entry slug>/a.png`` or ``b.png``) or an image store reference (``sha256:…``, kept
    as it is); ``resolve(value, root)`` finds its file (default: ``root / value``; ``harness run``
    passes :func:`harness.run.store.resolve_artifact` bound to its store), None: not found."""
    from harness.errors import HarnessError
    from harness.imageio import load_image, save_png
    from harness.naming import case_slug
    from harness.report.schema import CaseResult

    t0 = time.perf_counter()
    cc = pair.check
    config: dict[str, Any] = {"cross": {"a": cc.a, "b": cc.b, "stage": cc.stage, "max_hue_deg": cc.max_hue_deg,
                                        "max_hf_rel": cc.max_hf_rel, "case_a": pair.a.id, "case_b": pair.b.id}}

    def entry(status: str, error: str | None, checks=(), artifacts=None) -> CaseResult:
        return CaseResult(pair.id, pair.vector, pair.pipeline, pair.seed, status, error,
                          {"cross": time.perf_counter() - t0}, dict(artifacts or {}), list(checks), {}, config)

    for name, case, side in (("a", pair.a, side_a), ("b", pair.b, side_b)):
        if side is None:
            return entry("error", f"side {name} ({case.id}) has no result: nothing to compare")
        if side.error:
            return entry("error", f"side {name} ({case.id}) errored: {side.error}")
    rel_a, rel_b = _image_of(side_a, pair.a, cc.stage), _image_of(side_b, pair.b, cc.stage)
    if cc.stage == "generate" and rel_a is None and rel_b is None:
        return entry("skip", f"vector {pair.vector!r}: neither {cc.a!r} nor {cc.b!r} generated an image for it "
                             "(its own source, passed through): nothing to compare at stage generate "
                             "(stage = \"output\" compares the final images)")
    for name, case, rel in (("a", pair.a, rel_a), ("b", pair.b, rel_b)):
        if rel is None:
            what = ("made no image at stage generate (passed its input through)" if cc.stage == "generate"
                    else "has no output image")
            return entry("error", f"side {name} ({case.id}) {what}: nothing to compare")
    artifacts = {"a": rel_a, "b": rel_b}
    find = resolve or _in_folder
    try:
        files = [find(rel, side.root or run_dir) for rel, side in ((rel_a, side_a), (rel_b, side_b))]
        for name, rel, f in (("a", rel_a, files[0]), ("b", rel_b, files[1])):
            if f is None:
                raise ValueError(f"side {name}'s image {rel} is not there (a pruned image store or a moved run)")
        img_a, img_b = load_image(files[0]), load_image(files[1])
        checks, info = cross_checks(img_a, img_b, cc)
        for name, side, img in (("a", side_a, img_a), ("b", side_b, img_b)):
            if side.root is not None and not artifacts[name].startswith("sha256:"):  # keep the image with the entry
                artifacts[name] = f"artifacts/{case_slug(pair.id)}/{name}.png"
                save_png(run_dir / artifacts[name], img)
    except (HarnessError, OSError, ValueError) as exc:
        return entry("error", f"cannot compare {rel_a} with {rel_b}: {exc}", artifacts=artifacts)
    config["measured"] = info
    status = "skip" if all(c.status == "skip" for c in checks) else worst(c.status for c in checks)
    finite = all(c.value is None or math.isfinite(c.value) for c in checks)
    if not finite:
        status = "error"
    message = _notes(checks, info)
    if status == "fail":  # one line naming both numbers, whichever failed
        message = "; ".join(x for x in (_beyond(checks, cc), message) if x)
    return entry(status, message, checks, artifacts)


def record_cross(pairs: Sequence[CrossPair], run_dir: Path, recorded: Mapping[str, CaseResult],
                 record: Callable[[CaseResult, Any], None], say: Callable[[str], None],
                 deferred: Callable[[], AbstractContextManager[Any]], resolve: Resolve | None = None) -> None:
    """``harness run``'s step after every case: one entry per pair not yet ``recorded`` (a resumed
    run keeps the entries it has), from its two sides' recorded results and images (``resolve``:
    see :func:`judge_cross`)."""
    for pair in pairs:
        if pair.id in recorded:
            continue
        cr = judge_cross(pair, run_dir, *(Side.of(c.id, recorded.get(c.id)) for c in (pair.a, pair.b)),
                         resolve=resolve)
        with deferred():  # a signal waits until the entry is recorded
            record(cr, None)
        n_fail = sum(c.status == "fail" for c in cr.checks)
        say(f"[cross] {cr.status:5} {pair.id}" + (f"  {n_fail} failed checks" if n_fail else "")
            + (f"  {cr.error}" if cr.error else ""))
