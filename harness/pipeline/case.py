"""One case: a vector through a pipeline with a seed, executed end to end, then judged.

:func:`execute_case` runs vector → generate → detect → mask → inpaint → denoise →
upscale with the case's backends, measures the final image (regions from the vector's
ground-truth overlay mask and its texture anchors) and never raises: an error becomes
``CaseOutput.error``.  :func:`judge_case` compares the measurement with the stored
baseline.  Both are what every executor and the pytest plugin call.

While it runs, :func:`execute_case` records what every stage did and then evaluates the
vector's ``[expect]`` table and each stage's effect as *absolute* checks
(:mod:`harness.pipeline.expectations`, ``CaseOutput.expectations``); the judges add them to
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

from harness.imageio import float_to_uint8
from harness.comparing.engine import Check, CompareConfig, compare_distribution, compare_paired, summarize_status
from harness.comparing.selfcheck import recorded_check
from harness.errors import BaselineError, HarnessError, StageError
from harness.measuring.result import Measurement, MetricValues, floor_std
from harness.naming import case_slug, group_id
from harness.pipeline.baselines import BaselineStore
from harness.pipeline.batching import cached_stage, chunk_of
from harness.pipeline.cache import StageCache, stage_key
from harness.pipeline.expectations import failure_note
from harness.pipeline.suite import Case, DistributionConfig, Suite

__all__ = ["CaseOutput", "execute_case", "judge_case", "judge_group", "judge_expectations", "group_id",
           "environment_drift", "STAGE_METRICS"]

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
    # absolute checks (harness.pipeline.expectations): never compared with a baseline
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

    ``input_jitter_seed`` (calibration renders only, see :mod:`harness.pipeline.calibration`):
    add uniform integer jitter in -1..+1 LSB, seeded by it, to the rendered input image
    before the pipeline runs (its overlay mask and anchors are not touched).

    ``seeds``: the run's planned seeds (default: the suite's), cut into chunks of the suite's
    ``batch_seeds`` for batched generation (:mod:`harness.pipeline.batching`).  A suite with
    ``rerun_check`` runs the case a second time, one-by-one and bypassing the stage cache, and
    adds the ``rerun_identical`` check (:mod:`harness.pipeline.rerun`)."""
    chunk = chunk_of(case.seed, suite.seeds if seeds is None else seeds, suite.batch_seeds)
    first: dict[str, dict] = {"outputs": {}, "infos": {}}
    out = _execute(case, suite, run_dir, cache, input_jitter_seed, stage_hook, chunk, first)
    if suite.rerun_check and out.error is None:
        from harness.pipeline.rerun import compare_runs, determinism_settings

        second: dict[str, dict] = {"outputs": {}, "infos": {}}
        t0 = time.perf_counter()
        again = _execute(case, suite, run_dir, StageCache(None), input_jitter_seed, stage_hook, [case.seed], second,
                         rerun=True)
        out.timings["rerun"] = time.perf_counter() - t0
        check, record = compare_runs(first["outputs"], again.error or second["outputs"])
        record["settings"] = determinism_settings(out.config.get("stages", []), first["infos"])
        out.config["rerun"] = record
        out.expectations.append(check)
    return out


def _execute(case: Case, suite: Suite, run_dir: Path, cache: StageCache, input_jitter_seed: int | None,
             stage_hook: StageHook | None, chunk: Sequence[int], captured: dict[str, dict],
             rerun: bool = False) -> CaseOutput:
    """One run of the case (see :func:`execute_case`); each stage's output goes to ``captured``.
    ``rerun``: the rerun check's second run: no artifacts, no measurement."""
    from harness.imageio import save_png
    from harness.measuring.driver import measure
    from harness.pipeline.expectations import StageLog, evaluate

    at = stage_hook or _no_hook
    from harness.pipeline.stages import StageContext, backend_config, build_backend, run_stage
    from harness.pipeline.vectors import render

    timings: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    stages: dict[str, float] = {}
    config: dict[str, Any] = {"pipeline": case.pipeline.as_dict(), "seed": case.seed}
    log = StageLog()  # what each stage did, for the absolute checks
    backends = {s.stage: s.backend for s in case.pipeline.stages}

    def save(name: str, arr: np.ndarray) -> None:
        if rerun:
            return
        rel = f"artifacts/{case_slug(case.id)}/{name}.png"
        save_png(run_dir / rel, arr)
        artifacts[name] = rel

    try:
        t0 = time.perf_counter()
        vector = suite.vector(case.vector)
        config["stages"] = []
        generated = False
        if vector.needs_generation:
            # a prompt vector: the generate stage makes the base image, then the
            # vector's overlays and anchors are drawn on it
            rendered = _generate_base(vector, case, cache, config, timings, stages, at, chunk, captured["infos"])
            captured["outputs"]["generate"] = (rendered.clean, None)
            log.generated(backends.get("generate", "?"), rendered.clean, rendered.anchors)
            save("generate", rendered.clean)  # the generated base, before overlays (cross-model checks read it)
            generated = True
        else:
            rendered = render(vector)
        timings["vector"] = time.perf_counter() - t0 - timings.get("generate", 0.0)
        image = rendered.image
        if input_jitter_seed is not None:
            image = jitter_lsb(image, input_jitter_seed)
        ctx = StageContext(seed=case.seed, mask=None, truth_mask=rendered.overlay_mask, anchors=rendered.anchors)
        captured["outputs"]["vector"] = (image, None)
        save("input", image)
        for spec in case.pipeline.stages:
            if generated and spec.stage == "generate":
                continue
            with at(f"stage {spec.stage} (loading backend {spec.backend!r})"):
                backend = build_backend(spec.stage, spec.backend, dict(spec.params))
            bconf = backend_config(backend)
            config["stages"].append(bconf)
            if spec.stage == "inpaint" and ctx.mask is None:
                timings[spec.stage] = 0.0
                stages["inpaint.skipped"] = 1.0
                log.skipped("inpaint")
                continue
            if spec.stage == "upscale":
                ctx.guide = image
            stage_in = (image, ctx.mask, ctx.truth_mask if spec.stage in ("detect", "mask") else None,
                        ctx.anchors if spec.stage == "mask" else None, ctx.guide if spec.stage == "upscale" else None)
            t0 = time.perf_counter()
            # from the cache, else computed; the generate stage of a vector with its own image (img2img)
            # has a seed-independent input, so a batching backend renders its chunk of seeds at once
            with at(f"stage {spec.stage} (backend {spec.backend!r})"):
                hit = cached_stage(spec.stage, backend, bconf, cache, case.seed,
                                   chunk if spec.stage == "generate" else [case.seed],
                                   lambda s: stage_key(spec.stage, bconf, backend, s, *stage_in),  # noqa: B023
                                   image, lambda s: dataclasses.replace(ctx, seed=s), config,  # (used at once)
                                   lambda: run_stage(backend, image, ctx))  # noqa: B023
            timings[spec.stage] = time.perf_counter() - t0
            out_img, out_mask, info = hit
            captured["outputs"][spec.stage], captured["infos"][spec.stage] = (out_img, out_mask), info
            log.record(spec.stage, spec.backend, bconf["params"], image, ctx.mask, ctx.truth_mask, out_img, out_mask,
                       info)
            for k, v in info.items():
                if isinstance(v, (int, float, bool)) and not isinstance(v, str):
                    stages[f"{spec.stage}.{k}"] = float(v)
            if spec.stage in ("detect", "mask"):
                rejected = info.get("rejected")
                if spec.stage == "mask":
                    stages["mask.rejected"] = 1.0 if rejected else 0.0
                    if rejected:
                        config["mask_rejected"] = str(rejected)
                ctx.mask = None if rejected or out_mask is None or not np.any(out_mask >= 0.5) else out_mask
                if ctx.mask is not None:
                    save(f"{spec.stage}_mask", float_to_uint8(np.clip(ctx.mask, 0, 1)))
            if out_img is not None:
                image = out_img
                save(spec.stage, image)
        if rerun:
            return CaseOutput(case.id, None, stages, timings, artifacts, config)
        save("output", image)
        t0 = time.perf_counter()
        shape = image.shape[:2]
        truth = _resize_map(rendered.overlay_mask, shape)
        anchors = _resize_map(rendered.anchors.astype(np.float32), shape) if rendered.anchors is not None else None
        has_mask = bool(np.any(truth >= 0.5)) and not bool(np.all(truth >= 0.5))
        m = measure(image, truth if has_mask else None, anchors=anchors, tile=suite.tile, ring=suite.ring)
        timings["measure"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        expectations = evaluate(vector, [s.stage for s in case.pipeline.stages], backends, log, rendered.clean, image)
        timings["expect"] = time.perf_counter() - t0
        return CaseOutput(case.id, _with_stage_metrics(m, stages).to_dict(), stages, timings, artifacts, config,
                          expectations=expectations)
    except (HarnessError, StageError) as exc:  # a clean one-line reason, no traceback excerpt
        return CaseOutput(case.id, None, stages, timings, artifacts, config, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one failing case never kills the others
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return CaseOutput(case.id, None, stages, timings, artifacts, config,
                          f"{type(exc).__name__}: {exc} [{tb}]")


def jitter_lsb(image: np.ndarray, seed: int) -> np.ndarray:
    """``image`` (uint8) plus uniform integer jitter in -1..+1, seeded by ``seed``, clipped to 0..255."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-1, 2, size=image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _generate_base(vector, case: Case, cache: StageCache, config: dict, timings: dict, stages: dict,
                   at: StageHook = _no_hook, chunk: Sequence[int] = (), infos: dict | None = None):
    """Run the pipeline's generate stage on a prompt vector; returns the vector rendered on its output.

    ``chunk``: the seeds (this case's among them) a batch-capable backend renders together on a
    cache miss, each cached under its one-by-one key (:mod:`harness.pipeline.batching`)."""
    from harness.errors import ConfigError
    from harness.pipeline.stages import StageContext, backend_config, build_backend, run_stage
    from harness.pipeline.vectors import render

    spec = next((s for s in case.pipeline.stages if s.stage == "generate"), None)
    if spec is None or spec.backend == "source":
        example = "face_gan" if vector.source.get("kind") == "generated" else "tiny_diffusion"
        raise ConfigError(f"vector {vector.id!r} has a {vector.source.get('kind')} source: pipeline "
                          f"{case.pipeline.name!r} needs a generating backend in its generate stage "
                          f"(e.g. backend = \"{example}\")")
    with at(f"stage generate (loading backend {spec.backend!r})"):
        backend = build_backend("generate", spec.backend, dict(spec.params))
    bconf = backend_config(backend)
    config["stages"].append(bconf)
    h, w = vector.size
    placeholder = np.full((h, w, 3), 128, np.uint8)
    prompt, negative = vector.source.get("prompt"), vector.source.get("negative_prompt")

    def key_of(seed: int) -> str:
        return stage_key("generate", bconf, backend, seed, prompt, negative, (h, w))

    def ctx_of(seed: int) -> StageContext:
        return StageContext(seed=seed, prompt=prompt, negative_prompt=negative)

    t0 = time.perf_counter()
    with at(f"stage generate (backend {spec.backend!r})"):
        hit = cached_stage("generate", backend, bconf, cache, case.seed, list(chunk) or [case.seed], key_of,
                           placeholder, ctx_of, config, lambda: run_stage(backend, placeholder, ctx_of(case.seed)))
    timings["generate"] = time.perf_counter() - t0
    if infos is not None:
        infos["generate"] = hit[2]
    for k, v in hit[2].items():
        if isinstance(v, (int, float)):
            stages[f"generate.{k}"] = float(v)
    return render(vector, base=hit[0])


def _with_stage_metrics(m: Measurement, stages: dict[str, float]) -> Measurement:
    metrics = dict(m.metrics)
    for (stage, key), metric in STAGE_METRICS.items():
        v = stages.get(f"{stage}.{key}")
        if v is not None:
            metrics[metric] = MetricValues(("all",), [v], [0.0], [0.0])
    return Measurement(metrics, m.meta)


def environment_drift(baked: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the environment a baseline was baked in and this run's
    (thread count, device, package versions): the first suspects when values move."""
    out = []
    for key in ("threads", "device"):
        if key in baked and baked[key] != now.get(key):
            out.append(f"{key} {baked[key]} -> {now.get(key)}")
    bv, nv = baked.get("versions", {}), now.get("versions", {})
    for pkg in sorted(set(bv) & set(nv)):
        if pkg != "harness" and bv[pkg] != nv[pkg]:
            out.append(f"{pkg} {bv[pkg]} -> {nv[pkg]}")
    return out


def judge_case(out: CaseOutput, store: BaselineStore, config: CompareConfig, suite: Suite,
               environment: dict[str, Any], drift: set[str]) -> tuple[str, str | None, list[Check]]:
    """Status, error and checks of one executed case against its stored baseline (paired mode).

    ``drift`` collects how the baseline's environment differs from this one."""
    if out.error:
        return "error", out.error, []
    expect = list(out.expectations)  # absolute: no baseline changes their status
    try:
        base = store.load(out.case_id)
    except BaselineError as exc:
        return "error", str(exc), expect
    if base is None:
        return "fail", _joined(f"no baseline for {out.case_id}: create it with "
                               f"`harness bake --suite {suite.ref or suite.path} -k '{out.case_id}'`",
                               failure_note(expect)), expect
    drift.update(environment_drift(base.environment, environment))
    # A calibrated baseline (`harness bake --calibrate`) carries each slice's measured spread; its
    # measurement's std is floored by it at load, and the candidate (rendered the same way) gets
    # the same floor, so the noise term min(std_b, std_c) becomes max(min(std_b, std_c), spread).
    cand = floor_std(Measurement.from_dict(out.measurement), base.spread)
    checks = expect + compare_paired(base.measurement, cand, config)
    return summarize_status(checks), failure_note(expect), checks


def judge_expectations(out: CaseOutput) -> tuple[str, str | None, list[Check]]:
    """Status, message and checks of one case from its absolute checks alone (a seed of a
    distribution group, whose measurement is judged with the other seeds')."""
    if out.error:
        return "error", out.error, []
    expect = list(out.expectations)
    return summarize_status(expect), failure_note(expect), expect


def _joined(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _seed_expectations(cases: Sequence[Case], outputs: Sequence[CaseOutput]) -> list[Check]:
    """Every seed's absolute checks, each slice suffixed with ``seed=N``."""
    return [dataclasses.replace(c, slice=f"{c.slice} seed={case.seed}")
            for case, out in zip(cases, outputs) for c in out.expectations]


def _selfcheck(docs, n_run: int, suite: Suite) -> list[Check]:
    """The baseline's recorded self-check as a check of this run (none when the bake made none)."""
    dist = getattr(suite, "distribution", None) or DistributionConfig()
    check = recorded_check([getattr(b, "selfcheck", None) for b in docs], len(docs), n_run, dist)
    return [check] if check is not None else []


def judge_group(cases: Sequence[Case], outputs: Sequence[CaseOutput], store: BaselineStore, config: CompareConfig,
                suite: Suite) -> tuple[str, str | None, list[Check]]:
    """Status, error and checks of one distribution group: every seed's measurement against
    every stored baseline seed of the group -- not only this run's seeds, so a fresh seed set is
    compared with all baked ones (:func:`~harness.comparing.distribution.compare_distribution`,
    with the suite's ``[distribution]`` table)."""
    vector, pipeline = cases[0].vector, cases[0].pipeline.name
    cand = [Measurement.from_dict(o.measurement) for o in outputs if o.measurement is not None]
    expect = _seed_expectations(cases, outputs)  # absolute: no baseline changes their status
    note = failure_note(expect)
    try:
        ids = store.group_case_ids(vector, pipeline) or [c.id for c in cases]
        docs = [b for cid in ids if (b := store.load(cid)) is not None]
        base = [b.measurement for b in docs]
        if len(base) < 2:
            return "fail", _joined(f"distribution mode needs >= 2 baseline seeds for {vector}/{pipeline}, "
                                   f"found {len(base)}: run `harness bake --suite {suite.ref or suite.path}`",
                                   note), expect
        if not cand:
            return "error", "no seed of this group produced an image", expect
        checks = expect + compare_distribution(base, cand, config, getattr(suite, "distribution", None))
        checks += _selfcheck(docs, len(cand), suite)
        power = [c.slice for c in checks if c.metric == "power" and c.status == "fail"]  # "... needs N seeds"
        return summarize_status(checks), _joined(note, "; ".join(power) or None), checks
    except (BaselineError, ValueError) as exc:
        return "error", str(exc), []
