"""One case: a vector through a pipeline with a seed, executed end to end, then judged.

:func:`execute_case` runs vector → generate → detect → mask → inpaint → denoise →
upscale with the case's backends, measures the final image (regions from the vector's
ground-truth overlay mask and its texture anchors) and never raises: an error becomes
``CaseOutput.error``.  :mod:`harness.run.judge` compares the measurement with the stored
baseline.  Both are what every executor and the pytest plugin call.

While it runs, :func:`execute_case` records what every stage did and then evaluates the
vector's ``[expect]`` table and each stage's effect as *absolute* checks
(:mod:`harness.checks.expectations`, ``CaseOutput.expectations``); the judges add them to
the compared checks, so a baseline that blesses a broken stage (a detector that found
nothing, a rejected mask, an erased anchor) cannot make the case pass.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Sequence

import numpy as np

from harness.comparing.engine import Check
from harness.errors import HarnessError, StageError
from harness.imageio import float_to_uint8
from harness.measuring.result import Measurement, MetricValues
from harness.naming import case_slug
from harness.run.batching import cached_stage, chunk_of
from harness.run.cache import StageCache, stage_key
from harness.run.generation import generate_base
from harness.run.staged import StagedCase
from harness.suite.suites import Case, Suite

__all__ = ["CaseOutput", "StagedCase", "execute_case", "run_stages", "finish_case", "jitter_lsb", "STAGE_METRICS"]

# Numbers from the stages that are compared like slices (see harness.measuring.metrics).
STAGE_METRICS = {
    ("detect", "recall"): "detect_recall",
    ("detect", "precision"): "detect_precision",
    ("mask", "coverage"): "mask_coverage",
    ("mask", "rejected"): "mask_rejected",
    ("mask", "anchor_clipped_px"): "anchor_clipped_px",
}


@dataclass
class CaseOutput:
    """What executing one case produces (picklable, so workers can return it)."""

    case_id: str
    measurement: dict[str, Any] | None
    stages: dict[str, float]
    timings: dict[str, float]
    artifacts: dict[str, str]
    config: dict[str, Any]
    error: str | None = None
    # absolute checks (harness.checks.expectations): never compared with a baseline
    expectations: list[Check] = field(default_factory=list)


def _resize_map(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if m.shape == shape:
        return m
    from PIL import Image

    img = Image.fromarray(m.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(img)


StageHook = Callable[[str], ContextManager[Any]]


@contextmanager
def _no_hook(where: str) -> Iterator[None]:
    yield


def execute_case(case: Case, suite: Suite, run_dir: Path, cache: StageCache, *,
                 input_jitter_seed: int | None = None, stage_hook: StageHook | None = None,
                 seeds: Sequence[int] | None = None) -> CaseOutput:
    """Run one permutation end to end; never raises (errors become ``CaseOutput.error``).

    ``stage_hook(where)`` is entered around each backend's loading and call, ``where`` naming
    the stage and backend (an isolating worker records it, to say where a hang or crash was).

    ``input_jitter_seed`` (calibration renders only, see :mod:`harness.run.calibration`):
    add uniform integer jitter in -1..+1 LSB, seeded by it, to the rendered input image
    before the pipeline runs (its overlay mask and anchors are not touched).

    ``seeds``: the run's planned seeds (default: the suite's), cut into chunks of the suite's
    ``batch_seeds`` for batched generation (:mod:`harness.run.batching`).  A suite with
    ``rerun_check`` runs the case a second time, one-by-one and bypassing the stage cache, and
    adds the ``rerun_identical`` check (:mod:`harness.run.rerun`).  Its two phases, :func:`run_stages`
    and :func:`finish_case`, may also run in two processes (:mod:`harness.run.pipelined`)."""
    return finish_case(run_stages(case, suite, run_dir, cache, input_jitter_seed=input_jitter_seed,
                                  stage_hook=stage_hook, seeds=seeds))


def run_stages(case: Case, suite: Suite, run_dir: Path, cache: StageCache, *, input_jitter_seed: int | None = None,
               stage_hook: StageHook | None = None, seeds: Sequence[int] | None = None,
               defer_saves: bool = False) -> StagedCase:
    """The first phase of :func:`execute_case` (same arguments): the input and every stage, and the
    rerun check; never raises (an error is the staged case's ``error``).  ``defer_saves``: the stage
    images are saved by :func:`finish_case`, wherever that runs."""
    chunk = chunk_of(case.seed, suite.seeds if seeds is None else seeds, suite.batch_seeds)
    first: dict[str, dict] = {"outputs": {}, "infos": {}}
    out = _execute(case, suite, run_dir, cache, input_jitter_seed, stage_hook, chunk, first, defer=defer_saves)
    if suite.rerun_check and out.error is None:
        from harness.run.rerun import compare_runs, determinism_settings

        second: dict[str, dict] = {"outputs": {}, "infos": {}}
        t0 = time.perf_counter()
        again = _execute(case, suite, run_dir, StageCache(None), input_jitter_seed, stage_hook, [case.seed], second,
                         rerun=True)
        out.timings["rerun"] = time.perf_counter() - t0
        check, record = compare_runs(first["outputs"], again.error or second["outputs"])
        record["settings"] = determinism_settings(out.config.get("stages", []), first["infos"])
        out.config["rerun"] = record
        out.checks.append(check)
    return out


def finish_case(staged: StagedCase, cache: StageCache | None = None) -> CaseOutput:
    """The second phase of :func:`execute_case`: measure the final image, evaluate the absolute checks; never
    raises.  ``cache``: this process's stage cache, for a case staged in another (pickled, it has none)."""
    ex = staged.ex
    if cache is not None:
        ex.cache = cache
    try:
        if isinstance(ex, _Deferred):
            ex.flush()
        if staged.error is not None:
            return ex.output(staged.error)
        out = _judge_absolute(ex, ex.vector, ex.rendered, staged.image)
    except Exception as exc:  # noqa: BLE001 - one failing case never kills the others
        return ex.output(staged.error or _reason(exc))
    out.expectations.extend(staged.checks)
    return out


def _reason(exc: Exception) -> str:
    """A failed case's error: one clean line, or with the traceback's last line (call it in the ``except``)."""
    if isinstance(exc, (HarnessError, StageError)):
        return f"{type(exc).__name__}: {exc}"
    tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
    return f"{type(exc).__name__}: {exc} [{tb}]"


@dataclass
class _Execution:
    """The state of one run of a case while its stages execute (see :func:`_execute`)."""

    case: Case
    suite: Suite
    run_dir: Path
    cache: StageCache
    at: StageHook
    chunk: Sequence[int]
    captured: dict[str, dict]
    rerun: bool
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    log: Any = None  # expectations.StageLog: what each stage did, for the absolute checks
    vector: Any = None  # the vector and its rendering, set by _input (a guided upscale reads its source)
    rendered: Any = None

    def save(self, name: str, arr: np.ndarray) -> None:
        """Keep stage image ``name``: in the run's image store (the artifact is its ``sha256:``
        reference; an image stored before is not written again), else as a run-folder PNG."""
        if self.rerun:
            return
        t0 = time.perf_counter()  # PNG encoding is the case's own work: timed as "save", not overhead
        images = getattr(self.cache, "images", None)  # a StageCache carries the run's ImageStore
        if images is not None:
            self.artifacts[name] = images.put(arr)
        else:
            from harness.imageio import save_png

            rel = f"artifacts/{case_slug(self.case.id)}/{name}.png"
            save_png(self.run_dir / rel, arr)
            self.artifacts[name] = rel
        self.timings["save"] = self.timings.get("save", 0.0) + time.perf_counter() - t0

    def output(self, error: str | None = None, measurement: dict[str, Any] | None = None,
               expectations: list[Check] | None = None) -> CaseOutput:
        return CaseOutput(self.case.id, measurement, self.stages, self.timings, self.artifacts, self.config, error,
                          expectations=list(expectations or []))


@dataclass
class _Deferred(_Execution):
    """An execution whose images are saved by :func:`finish_case` (``run_stages(defer_saves=True)``):
    PNG encoding is CPU work that a GPU's stage worker should not do while the GPU waits."""

    pending: list[tuple[str, np.ndarray]] | None = field(default_factory=list)  # None once flushed

    def save(self, name: str, arr: np.ndarray) -> None:
        if self.pending is None:
            return _Execution.save(self, name, arr)
        self.pending.append((name, arr.copy()))  # a copy: a later stage may write into its input

    def flush(self) -> None:
        for name, arr in self.pending or ():
            _Execution.save(self, name, arr)
        self.pending = None


def _execute(case: Case, suite: Suite, run_dir: Path, cache: StageCache, input_jitter_seed: int | None,
             stage_hook: StageHook | None, chunk: Sequence[int], captured: dict[str, dict],
             rerun: bool = False, defer: bool = False) -> StagedCase:
    """One run of the case's stages (see :func:`run_stages`); each stage's output goes to ``captured``.
    ``rerun``: the rerun check's second run: no artifacts."""
    from harness.checks.expectations import StageLog

    ex = (_Deferred if defer else _Execution)(case, suite, run_dir, cache, stage_hook or _no_hook, chunk, captured,
                                              rerun, config={"pipeline": case.pipeline.as_dict(), "seed": case.seed}, log=StageLog())
    try:
        vector, rendered, image, generated = _input(ex, input_jitter_seed)
        from harness.stages import StageContext

        ctx = StageContext(seed=case.seed, mask=None, truth_mask=rendered.overlay_mask, anchors=rendered.anchors)
        for spec in case.pipeline.stages:
            if not (generated and spec.stage == "generate"):
                image = _stage(ex, spec, image, ctx)
        return StagedCase(ex, image)
    except Exception as exc:  # noqa: BLE001 - one failing case never kills the others
        return StagedCase(ex, error=_reason(exc))


def _input(ex: _Execution, input_jitter_seed: int | None):
    """The vector, its rendering, the pipeline's input image and whether the generate stage ran
    (a prompt vector: the generate stage makes the base image, then the vector's overlays and
    anchors are drawn on it)."""
    from harness.suite.vectors import render

    t0, saved = time.perf_counter(), ex.timings.get("save", 0.0)
    vector = ex.suite.vector(ex.case.vector)
    ex.config["stages"] = []
    generated = False
    if vector.needs_generation:
        rendered = generate_base(vector, ex.case, ex.cache, ex.config, ex.timings, ex.stages, ex.at, ex.chunk,
                                  ex.captured["infos"])
        ex.captured["outputs"]["generate"] = (rendered.clean, None)
        ex.log.generated(_backends(ex.case).get("generate", "?"), rendered.clean, rendered.anchors)
        ex.save("generate", rendered.clean)  # the generated base, before overlays (cross-model checks read it)
        generated = True
    else:
        rendered = render(vector)
    ex.timings["vector"] = (time.perf_counter() - t0 - ex.timings.get("generate", 0.0)
                            - (ex.timings.get("save", 0.0) - saved))
    image = rendered.image
    if input_jitter_seed is not None:
        image = jitter_lsb(image, input_jitter_seed)
    ex.captured["outputs"]["vector"] = (image, None)
    ex.save("input", image)
    ex.vector, ex.rendered = vector, rendered
    return vector, rendered, image, generated


def _backends(case: Case) -> dict[str, str]:
    return {s.stage: s.backend for s in case.pipeline.stages}


def _stage(ex: _Execution, spec, image: np.ndarray, ctx) -> np.ndarray:
    """Run one stage of the pipeline on ``image`` (from the cache, else computed); returns the
    image the next stage takes.  ``ctx`` carries the mask from detect / mask onwards."""
    from harness.run.stage_record import record_identity
    from harness.stages import backend_config, build_backend, run_stage

    with ex.at(f"stage {spec.stage} (loading backend {spec.backend!r})"):
        backend = build_backend(spec.stage, spec.backend, dict(spec.params))
    bconf = backend_config(backend)
    ex.config["stages"].append(bconf)
    record_identity(ex.config, spec.stage, backend)
    if spec.stage == "inpaint" and ctx.mask is None:
        ex.timings[spec.stage] = 0.0
        ex.stages["inpaint.skipped"] = 1.0
        ex.log.skipped("inpaint")
        return image
    if spec.stage == "upscale":  # a full-resolution guide image, for backends that follow one
        from harness.suite.guides import build_guide

        ctx.guide = build_guide(backend, ex.vector, ex.rendered)
        if ctx.guide is not None:
            ex.save("upscale_guide", ctx.guide.image)
    guide_key = ctx.guide.key_parts() if spec.stage == "upscale" and ctx.guide is not None else (None,)
    stage_in = (image, ctx.mask, ctx.truth_mask if spec.stage in ("detect", "mask") else None,
                ctx.anchors if spec.stage == "mask" else None, *guide_key)
    t0 = time.perf_counter()
    # from the cache, else computed; the generate stage of a vector with its own image (img2img)
    # has a seed-independent input, so a batching backend renders its chunk of seeds at once
    with ex.at(f"stage {spec.stage} (backend {spec.backend!r})"):
        hit = cached_stage(spec.stage, backend, bconf, ex.cache, ex.case.seed,
                           ex.chunk if spec.stage == "generate" else [ex.case.seed],
                           lambda s: stage_key(spec.stage, bconf, backend, s, *stage_in),
                           image, lambda s: dataclasses.replace(ctx, seed=s), ex.config,
                           lambda: run_stage(backend, image, ctx))
    ex.timings[spec.stage] = time.perf_counter() - t0
    out_img, out_mask, info = hit
    ex.captured["outputs"][spec.stage], ex.captured["infos"][spec.stage] = (out_img, out_mask), info
    ex.log.record(spec.stage, spec.backend, bconf["params"], image, ctx.mask, ctx.truth_mask, out_img, out_mask,
                  info)
    for k, v in info.items():
        if isinstance(v, (int, float, bool)) and not isinstance(v, str):
            ex.stages[f"{spec.stage}.{k}"] = float(v)
    if spec.stage in ("detect", "mask"):
        _take_mask(ex, spec.stage, info, out_mask, ctx)
    if out_img is not None:
        image = out_img
        ex.save(spec.stage, image)
    return image


def _take_mask(ex: _Execution, stage: str, info: dict[str, Any], out_mask: np.ndarray | None, ctx) -> None:
    """A detect / mask stage's mask becomes the context's (None: rejected, or nothing in it)."""
    rejected = info.get("rejected")
    if stage == "mask":
        ex.stages["mask.rejected"] = 1.0 if rejected else 0.0
        if rejected:
            ex.config["mask_rejected"] = str(rejected)
    ctx.mask = None if rejected or out_mask is None or not np.any(out_mask >= 0.5) else out_mask
    if ctx.mask is not None:
        ex.save(f"{stage}_mask", float_to_uint8(np.clip(ctx.mask, 0, 1)))


def _judge_absolute(ex: _Execution, vector, rendered, image: np.ndarray) -> CaseOutput:
    """Measure the final image (regions from the vector's overlay mask and anchors, at the
    output's size) and evaluate the absolute checks."""
    from harness.checks.expectations import evaluate
    from harness.run.measure_cache import cache_beside, cached_measure

    ex.save("output", image)
    t0 = time.perf_counter()
    shape = image.shape[:2]
    truth = _resize_map(rendered.overlay_mask, shape)
    anchors = _resize_map(rendered.anchors.astype(np.float32), shape) if rendered.anchors is not None else None
    has_mask = bool(np.any(truth >= 0.5)) and not bool(np.all(truth >= 0.5))
    # by content hash (image, mask, anchors, tile, ring, measuring code): a cached case measures nothing
    m = cached_measure(cache_beside(ex.cache), image, truth if has_mask else None, anchors=anchors,
                       tile=ex.suite.tile, ring=ex.suite.ring)
    ex.timings["measure"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    expectations = evaluate(vector, [s.stage for s in ex.case.pipeline.stages], _backends(ex.case), ex.log,
                            rendered.clean, image)
    ex.timings["expect"] = time.perf_counter() - t0
    return ex.output(None, _with_stage_metrics(m, ex.stages).to_dict(), expectations)


def jitter_lsb(image: np.ndarray, seed: int) -> np.ndarray:
    """``image`` (uint8) plus uniform integer jitter in -1..+1, seeded by ``seed``, clipped to 0..255."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-1, 2, size=image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _with_stage_metrics(m: Measurement, stages: dict[str, float]) -> Measurement:
    metrics = dict(m.metrics)
    for (stage, key), metric in STAGE_METRICS.items():
        v = stages.get(f"{stage}.{key}")
        if v is not None:
            metrics[metric] = MetricValues(("all",), [v], [0.0], [0.0])
    return Measurement(metrics, m.meta)
