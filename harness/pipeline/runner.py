"""Runs a suite: selects its cases, executes them on an executor, judges each against its
baseline and writes the run folder as cases finish.

``reports/<run-id>/`` gets ``cases/<slug>.json``, a ``checks.csv`` row block and a fresh
``report.json`` (``"complete": false`` until the end) after every case, so a crash keeps
what was done; one failing case never stops the others.  In ``distribution`` mode one
extra case per (vector, pipeline) compares all seeds with all baseline seeds.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.comparing.engine import CompareConfig
from harness.errors import ConfigError
from harness.naming import case_slug
from harness.pipeline.baselines import BaselineStore
from harness.pipeline.case import CaseOutput, group_id, judge_case, judge_group
from harness.pipeline.executors import CaseJob, make_executor
from harness.pipeline.suite import Case, Suite
from harness.report.schema import CSV_COLUMNS, CaseResult, Report, checks_csv_rows

if TYPE_CHECKING:
    from harness.project import Project

__all__ = ["run_suite"]


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
        from harness.fsio import atomic_write_text

        self.report.cases.append(case)
        cdir = self.run_dir / "cases"
        atomic_write_text(cdir / f"{case_slug(case.id)}.json", json.dumps(
            {"case": case.to_dict(), "measurement": measurement}, allow_nan=False))
        self.csv.write(checks_csv_rows(case))
        self.csv.flush()
        self.report.write(self.run_dir)

    def close(self) -> None:
        self.csv.close()
        self.report.write(self.run_dir)


def run_suite(suite: Suite, *, project: Project | None = None, out_root: Path | None = None,
              seeds: list[int] | None = None, k_expr: str | None = None, workers: int = 1, executor: str = "local",
              baselines_root: Path | None = None, cache_dir: Path | None = None, run_id: str | None = None,
              progress: Callable[[str], None] | None = None, judge: bool = True) -> tuple[Report, Path]:
    """Run every selected case of ``suite``; returns the report and its directory.

    Folders default to ``project``'s (the one found from the working directory when not
    given): reports under ``project.reports``, baselines from ``project.baselines``.
    ``cache_dir=None`` keeps stage outputs in memory only.  ``judge=False`` (what
    ``harness bake`` does) measures without comparing: cases are ``skip`` (or ``error``),
    never ``pass``, and the report says so in its notes.
    """
    from harness.pipeline.environment import fingerprint, set_threads
    from harness.project import load_project

    project = project or load_project()

    runner = make_executor(executor, workers)  # bad values fail before anything is written
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
                    {**fingerprint(suite.threads, project.root), "executor": executor, "workers": workers,
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
        if not judge:
            status, error, checks = ("error", out.error, []) if out.error else ("skip", None, [])
        elif suite.mode == "paired":
            status, error, checks = judge_case(out, store, config, suite, report.environment, drift)
        else:
            status, error, checks = ("error", out.error, []) if out.error else ("pass", None, [])
        cr = CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                        out.artifacts, checks, out.stages, out.config)
        flusher.add(cr, out.measurement)
        n_fail = sum(c.status == "fail" for c in checks)
        extra = f"  {n_fail} failed checks" if n_fail else ""
        extra += f"  {error}" if error else ""
        shown = status if judge or status == "error" else "measured"
        say(f"[{len(outputs)}/{len(cases)}] {shown:5} {case.id} ({sum(out.timings.values()):.1f}s){extra}")

    try:
        job = CaseJob(suite, run_dir, cache_dir, suite.threads, tuple(str(p) for p in project.pythonpath))
        for out in runner.run(cases, job):
            finish(out)
        if not judge:
            report.notes.append("measured for baking, not compared with baselines: no case of this run passed")
        elif suite.mode == "distribution":
            _distribution_cases(suite, cases, outputs, store, config, flusher, say)
        full = {c.id for c in suite.cases()}
        from harness.pipeline.suite import match_k

        obsolete = store.obsolete(full, (lambda cid: match_k(k_expr, cid)) if k_expr else None)
        if drift:
            report.notes.append("baselines were baked in a different environment: " + ", ".join(sorted(drift)))
        for cid in obsolete:
            report.notes.append(f"obsolete baseline {store.path_for(cid)}: its case is no longer in the suite "
                                f"(remove with `harness bake --suite {suite.ref} --prune`)")
        report.complete = True
    finally:
        flusher.close()
    took = f"{len(cases)} cases in {time.perf_counter() - t_start:.1f}s"
    if judge:
        say(f"{report.status.upper()}: {took}: {report.summary['passed']} passed, {report.summary['failed']} failed, "
            f"{report.summary['errors']} errors -> {run_dir / 'report.json'}")
    else:
        say(f"MEASURED: {took}: {report.summary['errors']} errors -> {run_dir / 'report.json'}")
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
        gid = group_id(vector, pipeline)
        status, error, checks = judge_group(members, [outputs[c.id] for c in members], store, config, suite)
        flusher.add(CaseResult(gid, vector, pipeline, None, status, error, {}, {}, checks), None)
        say(f"[dist] {status:5} {gid}  {error or ''}")
