"""Runs a suite: selects its cases, executes them on an executor, judges each against its
baseline and records each in the run folder as it finishes.

``reports/<run-id>/`` (see :mod:`harness.pipeline.rundir`) is created atomically, so two runs
never share it.  report.json is written when the run starts (``complete: false``, no cases,
the ``planned`` case ids) and once more at the end, or on an interrupt, from the records; in
between each finished case appends its ``checks.csv`` rows and writes ``cases/<slug>.json``, so
a crash keeps what was done and nothing is rewritten.  One failing, hanging or crashing case
never stops the others (:mod:`harness.pipeline.workers`).  In ``distribution`` mode one extra
case per (vector, pipeline) compares all seeds with all baseline seeds.

Interrupts: SIGINT and SIGTERM stop the run within about a second: the workers are killed,
report.json is written with ``complete: false`` (cases/ and checks.csv hold the same cases:
a signal that lands while a case is being recorded waits until it is), and
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
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from harness.comparing.engine import CompareConfig
from harness.errors import ConfigError, HarnessError
from harness.naming import is_cross, run_id
from harness.pipeline.baselines import BaselineStore
from harness.pipeline.case import CaseOutput, group_id, judge_case, judge_expectations, judge_group
from harness.pipeline.cross import plan_cross, record_cross
from harness.pipeline.executors import CaseJob, make_executor
from harness.pipeline.rundir import RunFolder, StorageError
from harness.pipeline.suite import Case, Suite
from harness.report.schema import CaseResult, Report

if TYPE_CHECKING:
    from harness.project import Project

__all__ = ["run_suite", "RunInterrupted", "RunStopped", "suite_digest"]


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run; its partial report (``complete: false``) is written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir: Path | None = None
        self.report: Report | None = None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class RunStopped(HarnessError):
    """Writing the run folder failed mid-run (e.g. a full disk): the run stopped, the partial
    report is on disk (``complete: false``); the message names the path (exit 2)."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.run_dir = run_dir


class _Signals:
    """SIGINT/SIGTERM raise :class:`RunInterrupted` in the main thread, but never while a case is
    being recorded (:meth:`deferred`): then they wait until it is.  A second signal raises at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0
        self.held = False
        self.saved: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals are only delivered to the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.saved.clear()

    def _handle(self, signum: int, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.held:
            return
        if self.depth == 0 or not first:
            raise RunInterrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.depth == 0 and self.signum is not None and not self.held:
            raise RunInterrupted(self.signum)

    def hold(self) -> None:
        """From now on signals are only noted: the report is being written."""
        self.held = True


def _new_run_id(suite: str) -> str:
    return run_id(suite)


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
              resume: str | Path | None = None) -> tuple[Report, Path]:
    """Run every selected case of ``suite``; returns the report and its directory.

    Folders default to ``project``'s (the one found from the working directory when not
    given): reports under ``project.reports``, baselines from ``project.baselines``.
    ``cache_dir=None`` keeps stage outputs in memory only.  ``judge=False`` (what
    ``harness bake`` does) measures without comparing: cases are ``skip`` (or ``error``),
    never ``pass``, and the report says so in its notes.  ``timeout``: seconds one case may
    run (default: the suite's ``timeout_s``; None: no limit).  ``resume``: the folder of an
    interrupted run of the same suite, seeds and ``-k``, whose missing cases are run.

    Raises :class:`RunInterrupted` on SIGINT/SIGTERM and :class:`RunStopped` when the run
    folder cannot be written mid-run, each after writing the partial report.
    """
    from harness.pipeline.environment import fingerprint, set_threads, stage_devices
    from harness.project import load_project

    project = project or load_project()
    if timeout is None:
        timeout = suite.timeout_s
    runner = make_executor(executor, workers, timeout)  # bad values fail before anything is written
    cases = suite.cases(seeds=seeds, k_expr=k_expr)
    if not cases:
        raise ConfigError(f"-k {k_expr!r} selects no case of suite {suite.name!r}")
    set_threads(suite.threads)
    baselines = Path(os.path.abspath(baselines_root or project.baselines))
    store = BaselineStore(suite.name, baselines)
    config = suite.compare_config()
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
                   "judged": judge, "timeout_s": timeout}
    say = progress or (lambda s: None)
    if resume is not None:
        folder, report = _reopen(Path(os.path.abspath(resume)), suite, planned, environment)
    else:
        root = Path(os.path.abspath(out_root or project.reports))
        folder = RunFolder.create(root, run_id or _new_run_id(suite.name), exact=run_id is not None)
        report = Report(folder.path.name, suite.name, _now(), environment, planned=planned)
        try:
            folder.start(report)  # an unwritable or full folder fails here, before any case runs
        except StorageError as exc:
            folder.discard()
            raise ConfigError(f"{exc.filename}: cannot write the run folder ({exc.strerror})") from None
    run_dir = folder.path
    recorded: dict[str, CaseResult] = {c.id: c for c in report.cases}
    outputs: dict[str, CaseOutput] = {}
    if distribution:  # the seeds recorded before a resume take part in their group's comparison
        outputs = _outputs_from_records(run_dir, recorded)
    todo = [c for c in cases if c.id not in recorded]
    drift: set[str] = set()
    retried: list[str] = []
    by_id = {c.id: c for c in cases}
    n_cases = len(cases)
    t_start = time.perf_counter()

    def record(cr: CaseResult, measurement: dict[str, Any] | None) -> None:
        folder.add(cr, measurement)
        recorded[cr.id] = cr

    def finish(out: CaseOutput) -> str:
        case = by_id[out.case_id]
        if distribution:
            outputs[out.case_id] = out
        if not judge:
            status, error, checks = ("error", out.error, []) if out.error else ("skip", None, [])
        elif suite.mode == "paired":
            status, error, checks = judge_case(out, store, config, suite, report.environment, drift)
        else:  # a seed of a distribution group: its measurement is judged with the other seeds' (below)
            status, error, checks = judge_expectations(out)
        if (out.config or {}).get("retried"):
            retried.append(f"{case.id} ({out.config['retried']})")
        record(CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                          out.artifacts, checks, out.stages, out.config), out.measurement)
        n_fail = sum(c.status == "fail" for c in checks)
        extra = f"  {n_fail} failed checks" if n_fail else ""
        extra += f"  {error}" if error else ""
        shown = status if judge or status == "error" else "measured"
        done = sum(cid in recorded for cid in by_id)
        return f"[{done}/{n_cases}] {shown:5} {case.id} ({sum(out.timings.values()):.1f}s){extra}"

    signals = _Signals()
    signals.install()
    failed: BaseException | None = None
    try:
        if hasattr(runner, "say"):
            runner.say = say
        job = CaseJob(suite, run_dir, Path(os.path.abspath(cache_dir)) if cache_dir else None, suite.threads,
                      tuple(str(p) for p in project.pythonpath), project.cache_max_mb * 2**20,
                      # batch_seeds chunks; none across workers that share no cache (each would render them)
                      seeds=tuple(seeds or suite.seeds) if cache_dir or workers == 1 else ())
        it = runner.run(todo, job)
        try:
            for out in it:
                with signals.deferred():
                    line = finish(out)
                say(line)
        finally:
            it.close()
        if not judge:
            report.notes.append("measured for baking, not compared with baselines: no case of this run passed")
        elif distribution:
            _distribution_cases(suite, cases, outputs, store, config, record, recorded, say, signals)
        if cross_pairs:  # after every case: each entry compares its two sides' recorded images
            record_cross(cross_pairs, run_dir, recorded, record, say, signals.deferred)
        report.notes.extend(cross_notes)
        if report.environment.get("resumed"):
            drift.update(_recorded_drift(store, report, todo))
        from harness.pipeline.suite import match_k

        obsolete = store.obsolete(suite.baseline_ids(), (lambda cid: match_k(k_expr, cid)) if k_expr else None)
        if drift:
            report.notes.append("baselines were baked in a different environment: " + ", ".join(sorted(drift)))
        for cid in obsolete:
            report.notes.append(f"obsolete baseline {store.path_for(cid)}: its case is no longer in the suite "
                                f"(remove with `harness bake --suite {suite.ref} --prune`)")
        report.notes.extend(f"stray file {p}: not in {store.manifest_path.name} (delete it, or bake its case)"
                            for p in store.strays())
        report.complete = all(cid in recorded for cid in planned)
    except RunInterrupted as exc:
        failed = exc
        exc.run_dir, exc.report = run_dir, report
        report.notes.append(f"interrupted by {signal.Signals(exc.signum).name}: {_progress(recorded, planned)}; "
                            f"finish it with `harness run --resume {run_dir}`")
        raise
    except StorageError as exc:
        failed = exc
        report.notes.append(f"stopped: {exc.filename}: {exc.strerror}; {_progress(recorded, planned)}")
        raise RunStopped(f"{exc.filename}: {exc.strerror}; the run stopped with {_progress(recorded, planned)}: "
                         f"partial report (incomplete) in {run_dir}", run_dir) from None
    except BaseException as exc:
        failed = exc
        report.notes.append(f"stopped by {type(exc).__name__}: {_progress(recorded, planned)}")
        raise
    finally:
        signals.hold()
        try:
            report.cases = [recorded[cid] for cid in planned if cid in recorded]
            if retried:
                report.notes.append("retried after a worker crash: " + "; ".join(retried))
            folder.finish(report)
        except StorageError as exc:
            if failed is None:  # the final write is the first thing that failed
                failed = exc
                raise RunStopped(f"{exc.filename}: {exc.strerror}; the final report could not be written: "
                                 f"partial report (incomplete) in {run_dir}", run_dir) from None
        finally:
            folder.close()
            signals.restore()
    took = f"{len(todo)} cases in {time.perf_counter() - t_start:.1f}s"
    extra = sum(c.id.endswith("/seeds") or is_cross(c.pipeline) for c in report.cases)
    if judge and extra:  # distribution groups and cross-model entries are judged entries too
        took += f" + {extra} group/cross entries"
    if judge:
        say(f"{report.status.upper()}: {took}: {report.summary['passed']} passed, {report.summary['failed']} failed, "
            f"{report.summary['errors']} errors -> {run_dir / 'report.json'}")
    else:
        say(f"MEASURED: {took}: {report.summary['errors']} errors -> {run_dir / 'report.json'}")
    for note in report.notes:
        say(f"note: {note}")
    return report, run_dir


def _progress(recorded: dict[str, CaseResult], planned: list[str]) -> str:
    return f"{sum(cid in recorded for cid in planned)} of {len(planned)} cases recorded"


def _reopen(run_dir: Path, suite: Suite, planned: list[str], environment: dict[str, Any]) -> tuple[RunFolder, Report]:
    """The interrupted run at ``run_dir``, locked, with its recorded cases; refused (ConfigError)
    when it is complete, still running, or of another suite, seeds, ``-k`` or baselines."""
    from harness.report.schema import load_report, read_case_records

    folder = RunFolder.reopen(run_dir)
    try:
        try:
            header = load_report(run_dir / "report.json")
        except HarnessError as exc:
            raise ConfigError(f"--resume {run_dir}: {exc}") from None
        if header.complete:
            raise ConfigError(f"--resume {run_dir}: the run is complete; nothing to resume")
        rec = header.environment
        problems = []
        if header.suite != suite.name:
            problems.append(f"it is a run of suite {header.suite!r}, not {suite.name!r}")
        elif rec.get("suite_digest") != environment["suite_digest"]:
            problems.append(f"suite {suite.path} (or one of its vectors) changed since the run started")
        for key, flag in (("seeds", "--seeds"), ("k", "-k"), ("judged", "judging")):
            if rec.get(key) != environment[key]:
                problems.append(f"it was run with {flag} {rec.get(key)!r}, not {environment[key]!r}")
        if rec.get("baselines") != environment["baselines"]:
            problems.append(f"it compared with the baselines in {rec.get('baselines')}, not {environment['baselines']} "
                            "(pass --baselines)")
        elif rec.get("baselines_digest") != environment["baselines_digest"]:
            problems.append(f"the baselines in {environment['baselines']} changed since the run started")
        if not problems and header.planned is not None and header.planned != planned:
            problems.append("the suite selects other cases now")
        if problems:
            raise ConfigError(f"--resume {run_dir}: " + "; ".join(problems) + ": start a new run instead")
        records = read_case_records(run_dir)
        cases = [records[cid][0] for cid in planned if cid in records]
        env = dict(rec)
        env["resumed"] = list(rec.get("resumed", [])) + [{"at": _now(), "executor": environment["executor"],
                                                          "workers": environment["workers"],
                                                          "timeout_s": environment["timeout_s"],
                                                          "recorded_before": len(cases)}]
        report = Report(header.run_id, header.suite, header.created, env, cases, planned=planned)
        report.notes.append(f"resumed at {env['resumed'][-1]['at']}: {len(cases)} of {len(planned)} cases were "
                            "recorded before, the rest were run now")
        moved = sorted(k for k in set(rec.get("versions", {})) | set(environment["versions"])
                       if rec.get("versions", {}).get(k) != environment["versions"].get(k))
        if moved:
            report.notes.append("resumed with other package versions than the run started with: " + ", ".join(
                f"{k} {rec.get('versions', {}).get(k)} -> {environment['versions'].get(k)}" for k in moved))
        try:
            folder.restart_csv(cases)
        except StorageError as exc:
            raise ConfigError(f"{exc.filename}: cannot write the run folder ({exc.strerror})") from None
    except BaseException:
        folder.close()
        raise
    return folder, report


def _outputs_from_records(run_dir: Path, recorded: dict[str, CaseResult]) -> dict[str, CaseOutput]:
    from harness.report.schema import read_case_records

    out = {}
    for cid, (c, measurement) in read_case_records(run_dir).items():
        if cid in recorded and c.seed is not None:
            out[cid] = CaseOutput(cid, measurement, c.stages, c.timings, c.artifacts, c.config,
                                  c.error if c.status == "error" else None)
    return out


def _recorded_drift(store: BaselineStore, report: Report, todo: list[Case]) -> set[str]:
    """Environment drift of the cases recorded before a resume (their notes were not kept)."""
    from harness.errors import BaselineError
    from harness.pipeline.case import environment_drift

    fresh = {c.id for c in todo}
    drift: set[str] = set()
    for cid in [c for c in (report.planned or []) if c not in fresh]:
        try:
            base = store.load(cid)
        except BaselineError:
            continue
        if base is not None:
            drift.update(environment_drift(base.environment, report.environment))
    return drift


def _distribution_cases(suite: Suite, cases: list[Case], outputs: dict[str, CaseOutput], store: BaselineStore,
                        config: CompareConfig, record: Callable[[CaseResult, Any], None],
                        recorded: dict[str, CaseResult], say: Callable[[str], None], signals: _Signals) -> None:
    """One extra case per (vector, pipeline): all seeds against all baseline seeds."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for c in cases:
        groups.setdefault((c.vector, c.pipeline.name), []).append(c)
    for (vector, pipeline), members in groups.items():
        gid = group_id(vector, pipeline)
        if gid in recorded:
            continue
        status, error, checks = judge_group(members, [outputs[c.id] for c in members], store, config, suite)
        with signals.deferred():
            record(CaseResult(gid, vector, pipeline, None, status, error, {}, {}, checks), None)
        say(f"[dist] {status:5} {gid}  {error or ''}")
