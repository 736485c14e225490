"""Executes a suite's permutations and compares each case with its baseline.

Every case runs vector → generate → detect → mask → inpaint → denoise → upscale
with the suite's backends, measures the final image (regions from the vector's
ground-truth overlay mask and its texture anchors), and compares with the
stored baseline.  Results are flushed as each case finishes (``cases/<id>.json``,
``report.json`` with ``"complete": false``, ``checks.csv``), so a crash keeps
what was done.  One failing case never stops the others.

Stage outputs are cached by content hash (input image, mask, backend config,
seed) in memory and under ``cache_dir``, so a detector shared by several
pipelines runs once per vector and seed.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from harness.pipeline.baselines import BaselineStore
from harness.comparing.engine import Check, CompareConfig, compare_distribution, compare_paired, summarize_status
from harness.errors import BaselineError, ConfigError, HarnessError
from harness.measuring.result import Measurement, MetricValues
from harness.report.schema import CaseResult, Report, checks_csv_rows, CSV_COLUMNS
from harness.pipeline.suite import Case, Suite

if TYPE_CHECKING:
    from harness.project import Project

__all__ = ["run_suite", "execute_case", "CaseOutput", "EXECUTORS"]
EXECUTORS = ("local", "ray")

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


def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype.str)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif p is None:
            h.update(b"\0none")
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


class StageCache:
    """Stage outputs by content hash: in memory, and on disk when ``directory`` is set."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._mem: dict[str, tuple[np.ndarray | None, np.ndarray | None, dict]] = {}

    def get(self, key: str):
        if key in self._mem:
            return self._mem[key]
        if self.directory is not None:
            p = self.directory / f"{key}.npz"
            if p.exists():
                try:
                    with np.load(p, allow_pickle=False) as z:
                        img = z["image"] if "image" in z.files else None
                        mask = z["mask"] if "mask" in z.files else None
                        info = json.loads(str(z["info"]))
                    self._mem[key] = (img, mask, info)
                    return self._mem[key]
                except (OSError, ValueError, KeyError):
                    p.unlink(missing_ok=True)  # a torn cache entry is recomputed, never trusted
        return None

    def put(self, key: str, image: np.ndarray | None, mask: np.ndarray | None, info: dict) -> None:
        self._mem[key] = (image, mask, info)
        if self.directory is None:
            return
        import io

        from harness.imageio import atomic_write_bytes

        arrays = {"info": np.array(json.dumps(info, default=str))}
        if image is not None:
            arrays["image"] = image
        if mask is not None:
            arrays["mask"] = mask
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        try:
            atomic_write_bytes(self.directory / f"{key}.npz", buf.getvalue())
        except OSError as exc:  # a full disk must not fail the case: warn once, stop caching to disk
            print(f"harness: warning: stage cache {self.directory} not written ({exc}); continuing without it",
                  file=sys.stderr)
            self.directory = None


def _resize_map(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if m.shape == shape:
        return m
    from PIL import Image

    img = Image.fromarray(m.astype(np.float32), mode="F").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(img)


def _safe(case_id: str) -> str:
    return case_id.replace("/", "__")


def execute_case(case: Case, suite: Suite, run_dir: Path, cache: StageCache) -> CaseOutput:
    """Run one permutation end to end; never raises (errors become ``CaseOutput.error``)."""
    from harness.imageio import save_png
    from harness.measuring.driver import measure
    from harness.pipeline.stages import StageContext, backend_config, build_backend, run_stage
    from harness.pipeline.vectors import render

    timings: dict[str, float] = {}
    artifacts: dict[str, str] = {}
    stages: dict[str, float] = {}
    config: dict[str, Any] = {"pipeline": case.pipeline.as_dict(), "seed": case.seed}

    def save(name: str, arr: np.ndarray) -> None:
        rel = f"artifacts/{_safe(case.id)}/{name}.png"
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
            rendered = _generate_base(vector, case, cache, config, timings, stages)
            generated = True
        else:
            rendered = render(vector)
        timings["vector"] = time.perf_counter() - t0 - timings.get("generate", 0.0)
        image = rendered.image
        ctx = StageContext(seed=case.seed, mask=None, truth_mask=rendered.overlay_mask, anchors=rendered.anchors)
        save("input", image)
        for spec in case.pipeline.stages:
            if generated and spec.stage == "generate":
                continue
            backend = build_backend(spec.stage, spec.backend, dict(spec.params))
            bconf = backend_config(backend)
            config["stages"].append(bconf)
            if spec.stage == "inpaint" and ctx.mask is None:
                timings[spec.stage] = 0.0
                stages["inpaint.skipped"] = 1.0
                continue
            if spec.stage == "upscale":
                ctx.guide = image
            key = _hash(spec.stage, bconf, case.seed, image, ctx.mask,
                        ctx.truth_mask if spec.stage in ("detect", "mask") else None,
                        ctx.anchors if spec.stage == "mask" else None, ctx.guide if spec.stage == "upscale" else None)
            t0 = time.perf_counter()
            hit = cache.get(key)
            if hit is None:
                result = run_stage(backend, image, ctx)
                hit = (result.image, result.mask, dict(result.info))
                cache.put(key, *hit)
            timings[spec.stage] = time.perf_counter() - t0
            out_img, out_mask, info = hit
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
                    save(f"{spec.stage}_mask", (np.clip(ctx.mask, 0, 1) * 255).round().astype(np.uint8))
            if out_img is not None:
                image = out_img
                save(spec.stage, image)
        save("output", image)
        t0 = time.perf_counter()
        shape = image.shape[:2]
        truth = _resize_map(rendered.overlay_mask, shape)
        anchors = _resize_map(rendered.anchors.astype(np.float32), shape) if rendered.anchors is not None else None
        has_mask = bool(np.any(truth >= 0.5)) and not bool(np.all(truth >= 0.5))
        m = measure(image, truth if has_mask else None, anchors=anchors, tile=suite.tile, ring=suite.ring)
        timings["measure"] = time.perf_counter() - t0
        return CaseOutput(case.id, _with_stage_metrics(m, stages).to_dict(), stages, timings, artifacts, config)
    except HarnessError as exc:
        return CaseOutput(case.id, None, stages, timings, artifacts, config, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - one failing case never kills the others
        tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
        return CaseOutput(case.id, None, stages, timings, artifacts, config,
                          f"{type(exc).__name__}: {exc} [{tb}]")


def _generate_base(vector, case: Case, cache: StageCache, config: dict, timings: dict, stages: dict):
    """Run the pipeline's generate stage on a prompt vector; returns the vector rendered on its output."""
    from harness.errors import ConfigError
    from harness.pipeline.stages import StageContext, backend_config, build_backend, run_stage
    from harness.pipeline.vectors import render

    spec = next((s for s in case.pipeline.stages if s.stage == "generate"), None)
    if spec is None or spec.backend == "source":
        raise ConfigError(f"vector {vector.id!r} has a prompt source: pipeline {case.pipeline.name!r} needs a "
                          f"generating backend in its generate stage (e.g. backend = \"tiny_diffusion\")")
    backend = build_backend("generate", spec.backend, dict(spec.params))
    bconf = backend_config(backend)
    config["stages"].append(bconf)
    h, w = vector.size
    placeholder = np.full((h, w, 3), 128, np.uint8)
    prompt, negative = vector.source["prompt"], vector.source.get("negative_prompt")
    key = _hash("generate", bconf, case.seed, prompt, negative, (h, w))
    t0 = time.perf_counter()
    hit = cache.get(key)
    if hit is None:
        result = run_stage(backend, placeholder, StageContext(seed=case.seed, prompt=prompt, negative_prompt=negative))
        hit = (result.image, None, dict(result.info))
        cache.put(key, *hit)
    timings["generate"] = time.perf_counter() - t0
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


def _new_run_id(suite: str) -> str:
    return f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{suite}"


class _Flusher:
    """Writes per-case results as they finish: case JSON, checks.csv rows, report.json."""

    def __init__(self, run_dir: Path, report: Report) -> None:
        self.run_dir = run_dir
        self.report = report
        run_dir.mkdir(parents=True, exist_ok=True)
        self.csv = open(run_dir / "checks.csv", "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.csv.write(",".join(CSV_COLUMNS) + "\n")
        report.write(run_dir)

    def add(self, case: CaseResult, measurement: dict[str, Any] | None) -> None:
        from harness.imageio import atomic_write_text

        self.report.cases.append(case)
        cdir = self.run_dir / "cases"
        atomic_write_text(cdir / f"{_safe(case.id)}.json", json.dumps(
            {"case": case.to_dict(), "measurement": measurement}, allow_nan=False))
        self.csv.write(checks_csv_rows(case))
        self.csv.flush()
        self.report.write(self.run_dir)

    def close(self) -> None:
        self.csv.close()
        self.report.write(self.run_dir)


def suite_ref(suite: Suite) -> str:
    """How to name the suite on a command line: its name when it was found by name, else its path."""
    return suite.ref or str(suite.path)


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


def _baseline_checks(out: CaseOutput, store: BaselineStore, config: CompareConfig, suite: Suite,
                     environment: dict[str, Any], drift: set[str]) -> tuple[str, str | None, list[Check]]:
    if out.error:
        return "error", out.error, []
    try:
        base = store.load(out.case_id)
    except BaselineError as exc:
        return "error", str(exc), []
    if base is None:
        return "fail", (f"no baseline for {out.case_id}: create it with "
                        f"`harness bake --suite {suite_ref(suite)} -k '{out.case_id}'`"), []
    drift.update(environment_drift(base.environment, environment))
    checks = compare_paired(base.measurement, Measurement.from_dict(out.measurement), config)
    return summarize_status(checks), None, checks


def run_suite(suite: Suite, *, project: Project | None = None, out_root: Path | None = None,
              seeds: list[int] | None = None, k_expr: str | None = None, workers: int = 1, executor: str = "local",
              baselines_root: Path | None = None, cache_dir: Path | None = None, run_id: str | None = None,
              progress: Callable[[str], None] | None = None) -> tuple[Report, Path]:
    """Run every selected case of ``suite``; returns the report and its directory.

    Folders default to ``project``'s (the one found from the working directory when not
    given): reports under ``project.reports``, baselines from ``project.baselines``.
    ``cache_dir=None`` keeps stage outputs in memory only.
    """
    from harness.pipeline.environment import fingerprint, set_threads
    from harness.project import load_project

    project = project or load_project()

    if executor not in EXECUTORS:
        raise ConfigError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if executor == "ray":
        from harness.pipeline.executors import require_ray

        require_ray()  # before anything is written
    cases = suite.cases(seeds=seeds, k_expr=k_expr)
    if not cases:
        raise ConfigError(f"-k {k_expr!r} selects no case of suite {suite.name!r}")
    set_threads(suite.threads)
    root = Path(out_root or project.reports)
    if run_id is None:
        run_id = _new_run_id(suite.name)
        n = 1
        while (root / run_id).exists():  # two runs in one second get distinct folders
            n += 1
            run_id = f"{_new_run_id(suite.name)}-{n}"
    run_dir = root / run_id
    if (run_dir / "report.json").exists():
        raise ConfigError(f"{run_dir}: a report already exists there; reports are never overwritten")
    store = BaselineStore(suite.name, Path(baselines_root or project.baselines))
    config = suite.compare_config()
    report = Report(run_id, suite.name, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    {**fingerprint(suite.threads), "executor": executor, "workers": workers,
                     "suite_file": str(suite.path), "project": project.to_dict(), "seeds": list(seeds or suite.seeds), "k": k_expr})
    flusher = _Flusher(run_dir, report)
    say = progress or (lambda s: None)
    outputs: dict[str, CaseOutput] = {}
    drift: set[str] = set()
    by_id = {c.id: c for c in cases}
    t_start = time.perf_counter()

    def finish(out: CaseOutput) -> None:
        outputs[out.case_id] = out
        case = by_id[out.case_id]
        if suite.mode == "paired":
            status, error, checks = _baseline_checks(out, store, config, suite, report.environment, drift)
        else:
            status, error, checks = ("error", out.error, []) if out.error else ("pass", None, [])
        cr = CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                        out.artifacts, checks, out.stages, out.config)
        flusher.add(cr, out.measurement)
        n_fail = sum(c.status == "fail" for c in checks)
        extra = f"  {n_fail} failed checks" if n_fail else ""
        extra += f"  {error}" if error else ""
        say(f"[{len(outputs)}/{len(cases)}] {status:5} {case.id} ({sum(out.timings.values()):.1f}s){extra}")

    try:
        if executor == "ray":
            from harness.pipeline.executors import run_ray

            for out in run_ray(cases, suite, run_dir, cache_dir, workers):
                finish(out)
        elif workers == 1:
            cache = StageCache(cache_dir)
            for case in cases:
                finish(execute_case(case, suite, run_dir, cache))
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                                     initargs=(suite.threads, tuple(str(p) for p in project.pythonpath))) as ex:
                futs = {ex.submit(_execute_in_worker, c, suite, run_dir, cache_dir): c for c in cases}
                for fut in as_completed(futs):
                    c = futs[fut]
                    try:
                        finish(fut.result())
                    except Exception as exc:  # noqa: BLE001 - a crashed worker is this case's error
                        finish(CaseOutput(c.id, None, {}, {}, {}, {}, f"worker crashed: {exc}"))
        if suite.mode == "distribution":
            _distribution_cases(suite, cases, outputs, store, config, flusher, say)
        full = {c.id for c in suite.cases()}
        from harness.pipeline.suite import match_k

        obsolete = store.obsolete(full, (lambda cid: match_k(k_expr, cid)) if k_expr else None)
        if drift:
            report.notes.append("baselines were baked in a different environment: " + ", ".join(sorted(drift)))
        for cid in obsolete:
            report.notes.append(f"obsolete baseline {store.path_for(cid)}: its case is no longer in the suite "
                                f"(remove with `harness bake --suite {suite_ref(suite)} --prune`)")
        report.complete = True
    finally:
        flusher.close()
    say(f"{report.status.upper()}: {len(cases)} cases in {time.perf_counter() - t_start:.1f}s: "
        f"{report.summary['passed']} passed, {report.summary['failed']} failed, {report.summary['errors']} errors"
        f" -> {run_dir / 'report.json'}")
    for note in report.notes:
        say(f"note: {note}")
    return report, run_dir


def _distribution_cases(suite: Suite, cases: list[Case], outputs: dict[str, CaseOutput], store: BaselineStore,
                        config: CompareConfig, flusher: _Flusher, say: Callable[[str], None]) -> None:
    """One extra case per (vector, pipeline): all seeds against all baseline seeds."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault((c.vector, c.pipeline.name), []).append(c)
    for (vector, pipeline), members in groups.items():
        gid = f"{vector}/{pipeline}/seeds"
        cand = [Measurement.from_dict(outputs[c.id].measurement) for c in members
                if outputs[c.id].measurement is not None]
        status, error, checks = "pass", None, []
        try:
            base = [b.measurement for c in members if (b := store.load(c.id)) is not None]
            if len(base) < 2:
                status, error = "fail", (f"distribution mode needs >= 2 baseline seeds for {vector}/{pipeline}, "
                                         f"found {len(base)}: run `harness bake --suite {suite_ref(suite)}`")
            elif not cand:
                status, error = "error", "no seed of this group produced an image"
            else:
                checks = compare_distribution(base, cand, config)
                status = summarize_status(checks)
        except (BaselineError, ValueError) as exc:
            status, error = "error", str(exc)
        flusher.add(CaseResult(gid, vector, pipeline, None, status, error, {}, {}, checks), None)
        say(f"[dist] {status:5} {gid}  {error or ''}")


def _worker_init(threads: int, pythonpath: tuple[str, ...] = ()) -> None:
    from harness.pipeline.environment import set_threads

    for p in reversed(pythonpath):  # the project's custom backends, whatever the start method
        if p not in sys.path:
            sys.path.insert(0, p)
    set_threads(threads)


_WORKER_CACHE: StageCache | None = None


def _execute_in_worker(case: Case, suite: Suite, run_dir: Path, cache_dir: Path | None) -> CaseOutput:
    global _WORKER_CACHE
    if _WORKER_CACHE is None:
        _WORKER_CACHE = StageCache(cache_dir)
    return execute_case(case, suite, run_dir, _WORKER_CACHE)
