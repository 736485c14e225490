"""Runs a suite: selects its cases, executes them on an executor, judges each against its
baseline and records each in the run folder as it finishes.

``reports/<run-id>/`` (see :mod:`harness.run.rundir`) is created atomically, so two runs
never share it.  report.json is written when the run starts (``complete: false``, no cases,
the ``planned`` case ids) and once more at the end, or on an interrupt, from the records; in
between each finished case writes its checks part, its measurement and ``cases/<slug>.json``
(:mod:`harness.run.rundir`), so a crash keeps what was done and nothing is rewritten; the
in-memory result keeps only its deciding checks.  One failing, hanging or crashing case
never stops the others (:mod:`harness.run.workers`).  In ``distribution`` mode one extra
case per (vector, pipeline) compares all seeds with all baseline seeds.

Interrupts: SIGINT and SIGTERM stop the run within about a second: the workers are killed,
report.json is written with ``complete: false`` after the checks are compacted (a signal that
lands while a case is being recorded waits until it is), and
:class:`RunInterrupted` (a ``KeyboardInterrupt``) is raised; ``harness run`` exits
128 + the signal number (130 for SIGINT, 143 for SIGTERM).  ``resume=DIR`` finishes only the
missing cases of such a run.  A write that fails mid-run (a full disk) stops the run the same
way and raises :class:`RunStopped` naming the path (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from harness.comparing.engine import Check, CompareConfig
from harness.errors import ConfigError, HarnessError
from harness.naming import run_id as _run_id
from harness.suite.baselines import BaselineStore
from harness.run.case import CaseOutput
from harness.naming import group_id
from harness.run.judge import drift_notes, judge_case, judge_expectations, judge_group, obsolete_notes
from harness.checks.cross import CrossPair, plan_cross, record_cross
from harness.run.executors import Executor, make_executor
from harness.run.interrupts import RunInterrupted, SignalGuard
from harness.run.job import CaseJob
from harness.run.observer import FailLimit, LineObserver, RunEnd, RunObserver
from harness.run.resume import Records, outputs_from_records, recorded_drift, reopen
from harness.run.rundir import RunFolder, StorageError
from harness.suite.suites import Case, Suite
from harness.report.schema import CaseResult, Report, changed_params

if TYPE_CHECKING:
    from harness.project import Project

__all__ = ["run_suite", "RunInterrupted", "RunStopped", "suite_digest"]


class RunStopped(HarnessError):
    """Writing the run folder failed mid-run (e.g. a full disk): the run stopped, the partial
    report is on disk (``complete: false``); the message names the path (exit 2)."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def suite_digest(suite: Suite) -> str:
    """What decides a run's cases and checks (seeds, vectors and their files' digests, pipelines,
    mode, threads, measure and compare settings), hashed: a resumed run must match it."""
    doc = {"name": suite.name, "seeds": list(suite.seeds), "vectors": list(suite.vectors),
           "pipelines": [[p.name, p.as_dict()] + ([list(p.vectors)] if p.vectors is not None else [])
                         for p in suite.pipelines], "mode": suite.mode, "threads": suite.threads,
           "tile": suite.tile, "ring": suite.ring, "compare": repr(suite.compare),
           "distribution": repr(suite.distribution), "cross": repr(suite.cross), "rerun_check": suite.rerun_check,
           "vector_digests": {v.id: v.digest for v in suite.vector_defs}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _baselines_digest(store: BaselineStore) -> str | None:
    try:
        return hashlib.sha256(store.manifest_path.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def run_suite(suite: Suite, *, project: Project | None = None, out_root: Path | None = None,
              seeds: list[int] | None = None, k_expr: str | None = None, workers: int = 1, executor: str = "local",
              baselines_root: Path | None = None, cache_dir: Path | None = None, run_id: str | None = None,
              progress: Callable[[str], None] | None = None, judge: bool = True, timeout: float | None = None,
              resume: str | Path | None = None, observer: RunObserver | None = None,
              maxfail: int | None = None) -> tuple[Report, Path]:
    """Run every selected case of ``suite``; returns the report and its directory.

    Folders default to ``project``'s (the one found from the working directory when not
    given): reports under ``project.reports``, baselines from ``project.baselines``.
    ``cache_dir=None`` keeps stage outputs in memory only.  ``judge=False`` (what
    ``harness bake`` does) measures without comparing: cases are ``skip`` (or ``error``),
    never ``pass``, and the report says so in its notes.  ``timeout``: seconds one case may
    run (default: the suite's ``timeout_s``; None: no limit).  ``resume``: the folder of an
    interrupted run of the same suite, seeds and ``-k``, whose missing cases are run.
    ``observer`` gets the run's events (default: ``progress``'s one line per case,
    :class:`~harness.run.observer.LineObserver`).  ``maxfail``: no case starts after that many
    failed or errored (the run is then incomplete, ``--resume`` finishes it).

    Raises :class:`RunInterrupted` on SIGINT/SIGTERM and :class:`RunStopped` when the run
    folder cannot be written mid-run, each after writing the partial report.
    """
    from harness.project import load_project

    project = project or load_project()
    if timeout is None:
        timeout = suite.timeout_s
    runner = make_executor(executor, workers, timeout)  # bad values fail before anything is written
    plan = _Plan.make(suite, project, seeds=seeds, k_expr=k_expr, judge=judge, executor=executor, workers=workers,
                      timeout=timeout, baselines_root=baselines_root)
    limit = FailLimit(maxfail)  # a bad value fails before anything is written
    obs = observer or LineObserver(progress or (lambda s: None))
    records: Records = {}  # a resumed run's case records
    if resume is not None:
        folder, report, records = reopen(Path(os.path.abspath(resume)), suite, plan.planned, plan.environment)
    else:
        folder, report = _start(plan, Path(os.path.abspath(out_root or project.reports)), run_id)
    run = _SuiteRun(plan, folder, report, obs, records, limit)
    if hasattr(runner, "say"):
        runner.say = obs.note
    if hasattr(runner, "on_dispatch"):  # the observer shows which cases are running
        runner.on_dispatch = lambda case: obs.started(case.id)
    job = CaseJob(suite, folder.path, Path(os.path.abspath(cache_dir)) if cache_dir else None, suite.threads,
                  tuple(str(p) for p in project.pythonpath), project.cache_max_mb * 2**20,
                  # batch_seeds chunks; none across workers that share no cache (each would render them)
                  seeds=tuple(seeds or suite.seeds) if cache_dir or workers == 1 else (),
                  store_dir=Path(report.environment.get("store") or plan.environment["store"]))  # a resumed run: its own
    if executor != "ray":  # local workers share this machine's devices: "auto" as planning resolved it
        from harness.models.diffusers_loading import auto_device_known

        job.auto_device = auto_device_known()
    if hasattr(runner, "put_png"):  # --executor ray: stage images shipped by its actors land in this run's store
        from harness.run.store import ImageStore

        runner.put_png = ImageStore(job.store_dir).put_png
    run.run(runner, job)
    run.say_summary()
    return report, folder.path


@dataclass
class _Plan:
    """What a run sets out to do: its cases, the ids it will record, and how it judges them."""

    suite: Suite
    cases: list[Case]
    planned: list[str]
    judge: bool
    distribution: bool
    store: BaselineStore
    config: CompareConfig
    environment: dict[str, Any]
    k_expr: str | None
    cross_pairs: list[CrossPair] = field(default_factory=list)
    cross_notes: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, suite: Suite, project: Project, *, seeds: list[int] | None, k_expr: str | None, judge: bool,
             executor: str, workers: int, timeout: float | None, baselines_root: Path | None) -> _Plan:
        from harness.run.environment import fingerprint, stage_devices
        from harness.threads import set_threads

        cases = suite.cases(seeds=seeds, k_expr=k_expr)
        if not cases:
            raise ConfigError(f"-k {k_expr!r} selects no case of suite {suite.name!r}")
        set_threads(suite.threads)  # before the fingerprint: it records what was applied
        baselines = Path(os.path.abspath(baselines_root or project.baselines))
        store = BaselineStore(suite.name, baselines)
        distribution = judge and suite.mode == "distribution"
        planned = [c.id for c in cases]
        if distribution:
            planned += list(dict.fromkeys(group_id(c.vector, c.pipeline.name) for c in cases))
        cross_pairs, cross_notes = plan_cross(suite, cases) if judge else ([], [])  # [[cross]]: vector/a+b/sSEED
        planned += [p.id for p in cross_pairs]
        environment = {**fingerprint(suite.threads, project.root, stage_devices(cases)), "executor": executor,
                       "workers": workers,
                       "suite_file": str(suite.path), "project": project.to_dict(), "seeds": list(seeds or suite.seeds),
                       "k": k_expr, "suite_digest": suite_digest(suite), "baselines": str(baselines),
                       "baselines_digest": _baselines_digest(store),
                       "judged": judge, "timeout_s": timeout, "store": str(project.store_root.resolve())}
        return cls(suite, cases, planned, judge, distribution, store, suite.compare_config(), environment, k_expr,
                   cross_pairs, cross_notes)


def _artifact_resolver(store_root: str | None):
    """``(artifacts value, run folder) -> file``: run-folder paths and this run's image store references."""
    from functools import partial

    from harness.run.store import resolve_artifact

    return partial(resolve_artifact, store_root=store_root)


def _start(plan: _Plan, root: Path, run_id: str | None) -> tuple[RunFolder, Report]:
    """A new run folder with its header report.json; an unwritable or full folder fails here,
    before any case runs."""
    folder = RunFolder.create(root, run_id or _run_id(plan.suite.name), exact=run_id is not None)
    report = Report(folder.path.name, plan.suite.name, _now(), plan.environment, planned=plan.planned)
    try:
        folder.start(report)
    except StorageError as exc:
        folder.discard()
        raise ConfigError(f"{exc.filename}: cannot write the run folder ({exc.strerror})") from None
    return folder, report


class _SuiteRun:
    """One run in progress: records each case as it lands, then the group and cross entries and
    the notes, and writes the final report.json however the run ends."""

    def __init__(self, plan: _Plan, folder: RunFolder, report: Report, observer: RunObserver,
                 records: Records, limit: FailLimit | None = None) -> None:
        self.plan = plan
        self.folder = folder
        self.report = report
        self.observer, self.say = observer, observer.note
        self.limit, self.stopped_at = limit or FailLimit(None), ""  # stopped_at: why no further case started
        self.recorded: dict[str, CaseResult] = {c.id: c for c in report.cases}
        self.outputs: dict[str, CaseOutput] = {}
        if plan.distribution:  # the seeds recorded before a resume take part in their group's comparison
            self.outputs = outputs_from_records(records, self.recorded)
        self.todo = [c for c in plan.cases if c.id not in self.recorded]
        self.by_id = {c.id: c for c in plan.cases}
        self.drift: set[str] = set()
        self.pipelines: dict[str, dict[str, Any]] = {}  # case id -> its baseline's pipeline config (changed)
        self.diverged: dict[str, dict[str, Any]] = {}  # case id -> its first stage unlike its reference image
        self.retried: list[str] = []
        self.signals = SignalGuard()
        self.t_start = time.perf_counter()
        self.memo: Any = None  # harness.run.case_memo.CaseMemo, set by _execute

    def record(self, cr: CaseResult, measurement: dict[str, Any] | None) -> None:
        self.folder.add(cr, measurement)
        self.recorded[cr.id] = cr

    def progress(self) -> str:
        return f"{sum(cid in self.recorded for cid in self.plan.planned)} of {len(self.plan.planned)} cases recorded"

    # -- the run
    def run(self, runner: Executor, job: CaseJob) -> None:
        """Execute, conclude and write the final report; on a signal, a failed write or any other
        exception, the partial report is written and the exception raised."""
        self.signals.install()
        failed: BaseException | None = None
        try:
            self.observer.begin(len(self.by_id), len(self.by_id) - len(self.todo))
            self._execute(runner, job)
            if self.stopped_at:  # --maxfail: incomplete, for --resume to finish
                self.report.notes.append(self.stopped_at)
            else:
                self._conclude()
        except BaseException as exc:
            failed = exc
            self._stopped(exc)  # raises
        finally:
            self._close(failed)

    def _execute(self, runner: Executor, job: CaseJob) -> None:
        from harness.run.case_memo import CaseMemo, replay  # cases recorded before, unchanged: no worker

        self.memo = CaseMemo.open(self.plan, job, self.report.environment)
        todo = replay(self.memo, self, self.todo, self._landed)
        if not todo or self.stopped_at:  # every case from the memo (no worker starts), or --maxfail reached
            return
        it = runner.run(todo, job)
        try:
            for out in it:
                with self.signals.deferred():
                    cr = self._finish(out)
                if self._landed(cr):  # --maxfail reached: no further case starts
                    break
        finally:
            it.close()

    def _finish(self, out: CaseOutput) -> CaseResult:
        """Judge and record one case."""
        case = self.by_id[out.case_id]
        if self.plan.distribution:
            self.outputs[out.case_id] = out
        status, error, checks = self._judged(out)
        if (out.config or {}).get("retried"):
            self.retried.append(f"{case.id} ({out.config['retried']})")
        changed = changed_params(self.pipelines.pop(case.id, None), (out.config or {}).get("pipeline"))
        cr = CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                        out.artifacts, checks, out.stages, out.config, changed,
                        diverged=self.diverged.pop(case.id, None))
        self.record(cr, out.measurement)
        if self.memo is not None:
            self.memo.keep(case, cr, self.folder.path)
        return cr

    def _landed(self, cr: CaseResult) -> bool:
        """Tell the observer; True when ``maxfail`` failing or errored cases have landed (and more wait)."""
        done = sum(cid in self.recorded for cid in self.by_id)
        self.observer.recorded(cr, done, len(self.by_id), self.plan.judge)
        self.stopped_at = self.limit.reached(cr.status, done < len(self.by_id), self.progress(), self.folder.path)
        return bool(self.stopped_at)

    def _judged(self, out: CaseOutput) -> tuple[str, str | None, list[Check]]:
        plan = self.plan
        if not plan.judge:  # measured for baking: the absolute checks are kept (bake refuses a case failing them)
            return ("error", out.error, []) if out.error else ("skip", None, list(out.expectations))
        if plan.suite.mode == "paired":
            return judge_case(out, plan.store, plan.config, plan.suite, self.report.environment, self.drift,
                              self.pipelines, self.diverged, self.folder.path)
        # a seed of a distribution group: its measurement is judged with the other seeds' (later)
        return judge_expectations(out)

    def _conclude(self) -> None:
        """After every case: group and cross entries, the notes, ``complete``."""
        plan, report = self.plan, self.report
        if not plan.judge:
            report.notes.append("measured for baking, not compared with baselines: no case of this run passed")
        elif plan.distribution:
            self._distribution_cases()
        if plan.cross_pairs:  # each entry compares its two sides' recorded images
            record_cross(plan.cross_pairs, self.folder.path, self.recorded, self.record, self.say,
                         self.signals.deferred, resolve=_artifact_resolver(report.environment.get("store")))
        report.notes.extend(plan.cross_notes)
        report.notes.extend(n for n in plan.suite.notes if n not in report.notes)  # a resumed run has them already
        if report.environment.get("resumed"):
            self.drift.update(recorded_drift(plan.store, report, self.todo))
        report.notes.extend(self._baseline_notes())
        report.complete = all(cid in self.recorded for cid in plan.planned)

    def _distribution_cases(self) -> None:
        """One extra case per (vector, pipeline): all seeds against all baseline seeds."""
        plan = self.plan
        groups: dict[tuple[str, str], list[Case]] = {}
        for c in plan.cases:
            groups.setdefault((c.vector, c.pipeline.name), []).append(c)
        for (vector, pipeline), members in groups.items():
            gid = group_id(vector, pipeline)
            if gid in self.recorded:
                continue
            status, error, checks = judge_group(members, [self.outputs[c.id] for c in members], plan.store,
                                                plan.config, plan.suite)
            with self.signals.deferred():
                self.record(CaseResult(gid, vector, pipeline, None, status, error, {}, {}, checks), None)
            self.say(f"[dist] {status:5} {gid}  {error or ''}")

    def _baseline_notes(self) -> list[str]:
        """Drift, obsolete baselines and stray files of the suite's baselines folder."""
        plan, store = self.plan, self.plan.store
        notes = drift_notes(self.drift) + obsolete_notes(store, plan.suite, plan.k_expr)
        notes.extend(f"stray file {p}: not in {store.manifest_path.name} (delete it, or bake its case)"
                     for p in store.strays())
        if plan.judge:
            from harness.run.store import missing_reference_notes

            notes.extend(missing_reference_notes(store, [c.id for c in plan.cases], self.report.environment.get("store")))
        return notes

    # -- how it ends
    def _stopped(self, exc: BaseException) -> None:
        """Note why the run stopped and raise (a failed write as :class:`RunStopped`)."""
        report, run_dir = self.report, self.folder.path
        if type(exc) is KeyboardInterrupt and self.signals.signum is not None:  # our handler's RunInterrupted,
            exc = RunInterrupted(self.signals.signum)  # re-raised bare by a library that waited (Ray's ray.get)
        if isinstance(exc, RunInterrupted):
            exc.run_dir, exc.report = run_dir, report
            report.notes.append(f"interrupted by {signal.Signals(exc.signum).name}: {self.progress()}; "
                                f"finish it with `harness run --resume {run_dir}`")
            raise exc
        if isinstance(exc, StorageError):
            report.notes.append(f"stopped: {exc.filename}: {exc.strerror}; {self.progress()}")
            raise RunStopped(f"{exc.filename}: {exc.strerror}; the run stopped with {self.progress()}: "
                             f"partial report (incomplete) in {run_dir}", run_dir) from None
        report.notes.append(f"stopped by {type(exc).__name__}: {self.progress()}")
        raise exc

    def _close(self, failed: BaseException | None) -> None:
        """The final report.json (complete or not), then the folder's lock and the signals let go."""
        self.signals.hold()
        report, run_dir = self.report, self.folder.path
        try:
            report.cases = [self.recorded[cid] for cid in self.plan.planned if cid in self.recorded]
            if self.retried:
                report.notes.append("retried after a worker crash: " + "; ".join(self.retried))
            self.folder.finish(report)
        except StorageError as exc:
            if failed is None:  # the final write is the first thing that failed
                raise RunStopped(f"{exc.filename}: {exc.strerror}; the final report could not be written: "
                                 f"partial report (incomplete) in {run_dir}", run_dir) from None
        finally:
            self.folder.close()
            self.signals.restore()

    def say_summary(self) -> None:
        ran = sum(c.id in self.recorded for c in self.todo)  # fewer than planned when --maxfail stopped it
        self.observer.finished(RunEnd(self.report, self.folder.path, ran, time.perf_counter() - self.t_start,
                                      self.plan.judge))
