"""Suite items the way ``harness run`` goes: :class:`RunContext` (in every process that runs items)
claims the run folder and runs cases in an isolating worker pool, recording each as it finishes;
:class:`RunBook` (in the owner) writes the final report.json and the views."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pytest

from harness.naming import case_slug, group_id
from harness.status import worst

if TYPE_CHECKING:
    from harness.checks.cross import CrossPair
    from harness.comparing.engine import Check
    from harness.run.case import CaseOutput
    from harness.run.job import CaseJob
    from harness.run.rundir import RunFolder
    from harness.suite.suites import Case
    from harness.run.workers import WorkerPool
    from harness.report.schema import CaseResult, Report

from harness.plugin.common import ItemResult, Session, show_path


# ==========================================================================================
# the run folder
# ==========================================================================================
def run_environment(session: Session, suite_file: str, threads: int, seeds: list[int],
                    devices: list[str] | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """report.json's ``environment``: the fingerprint (with the ``devices`` the suite's stages run
    on) plus how pytest ran the suite (``timeout_s``: the suite's limit per case)."""
    from harness.run.environment import fingerprint

    keyword = session.config.getoption("keyword") or None
    return {**fingerprint(threads, devices=devices), "executor": "pytest-xdist" if session.workers else "pytest",
            "workers": max(session.workers, 1), "suite_file": suite_file, "project": session.project().to_dict(),
            "seeds": seeds, "k": keyword or session.harness_k, "timeout_s": timeout_s,
            "store": str(session.project().store_root)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def planned_ids(suite_file: pytest.File) -> list[str]:
    """The case ids the session's selected items of ``suite_file`` will record, in item order (the
    same list in every process: each xdist worker collects and deselects every item)."""
    return [cid for item in suite_file.session.items if item.parent is suite_file
            for cid in getattr(item, "case_ids", ())]


class RunContext:
    """One suite's run folder and isolating worker pool in a process that runs its items.

    The folder is claimed (:meth:`RunFolder.claim`) when the process runs its first item of the
    suite: the session's first process creates it with the header report.json (``complete:
    false``, ``planned``); every process appends its cases' records.  Cases run in one
    long-lived worker process (:class:`WorkerPool`): the suite's ``timeout_s`` kills a hung
    case, a crash is retried once in a fresh worker, and either way only that item fails.
    """

    def __init__(self, session: Session, suite_file: pytest.File, run_id: str) -> None:
        from harness.suite.baselines import BaselineStore
        from harness.threads import set_threads
        from harness.run.environment import stage_devices
        from harness.run.rundir import RunFolder

        project = session.project()
        suite = suite_file.suite
        self.session = session
        self.suite = suite
        self.file = suite_file.nodeid
        self.store = BaselineStore(suite.name, project.baselines)
        self.compare = suite.compare_config()
        self.seeds = list(session.seeds or suite.seeds)
        set_threads(suite.threads)  # before the environment is read: it records what was applied
        self.devices = stage_devices(suite.cases(seeds=self.seeds))
        self.environment = run_environment(session, str(suite.path), suite.threads, self.seeds, self.devices,
                                           suite.timeout_s)
        self.created = _now()
        self.drift: set[str] = set()
        self.notes = self._obsolete_notes()
        self.sides: dict[str, Any] = {}  # case id -> cross.Side of the cases run here (suites with [[cross]])
        self.planned = planned_ids(suite_file)
        self.folder, _ = RunFolder.claim(project.reports, run_id, session.token, self._header)
        self.run_dir = self.folder.path
        self.run_id = self.run_dir.name
        self.pool = self._pool(project)

    def _header(self, name: str) -> Report:
        from harness.report.schema import Report

        return Report(name, self.suite.name, self.created, self.environment, planned=self.planned)

    def _pool(self, project) -> WorkerPool:
        from harness.run.workers import WorkerPool

        return WorkerPool(1, self.suite.timeout_s, self._job(project))

    def _job(self, project) -> CaseJob:
        from harness.run.job import CaseJob

        return CaseJob(self.suite, self.run_dir, project.cache, self.suite.threads,
                       tuple(str(p) for p in project.pythonpath), project.cache_max_mb * 2**20,
                       seeds=tuple(self.seeds), store_dir=project.store_root)

    def _obsolete_notes(self) -> list[str]:
        # Only when the whole suite file was selected: a -k selection says nothing about the rest.
        if self.suite.path.resolve() in self.session.partial:
            return []
        from harness.errors import BaselineError
        from harness.run.judge import obsolete_notes

        try:
            return obsolete_notes(self.store, self.suite, self.session.harness_k)
        except BaselineError:
            return []  # a corrupt manifest errors every case, with its message

    def props(self, result: ItemResult) -> dict[str, Any]:
        """What the owner needs to find and assemble the item's cases (``user_properties``)."""
        return {"run_dir": str(self.run_dir), "run_id": self.run_id, "suite": self.suite.name, "file": self.file,
                "suite_file": str(self.suite.path), "threads": self.suite.threads, "seeds": self.seeds,
                "devices": self.devices, "timeout_s": self.suite.timeout_s, "created": self.created,
                "cases": result.case_ids, "drift": sorted(self.drift), "notes": self.notes}

    def _run(self, cases: Sequence[Case], run_dir: Path | None = None) -> list[CaseOutput]:
        """``cases`` through the worker pool, in their order (artifacts under ``run_dir``, default
        the run folder)."""
        got = {out.case_id: out for out in self.pool.run(cases, run_dir)}
        return [got[c.id] for c in cases]

    def execute(self, cases: Sequence[Case], *, group: bool) -> ItemResult:
        """Run the item's case (or, for a distribution group, all its seeds) and record them."""
        outputs = self._run(cases)
        if self.suite.cross:
            from harness.checks.cross import Side

            self.sides.update((c.id, Side.of(c.id, o)) for c, o in zip(cases, outputs))
        if not group:
            return self._paired(cases[0], outputs[0])
        return self._group(cases, outputs)

    def execute_cross(self, pair: CrossPair) -> ItemResult:
        """A cross entry: its sides' images compared.  A side this process ran is read from the run
        folder; any other is run now into a scratch folder (never writing another item's files) and
        the compared image is copied to the entry's artifacts."""
        import tempfile

        from functools import partial

        from harness.checks.cross import Side, judge_cross
        from harness.run.store import resolve_artifact

        with tempfile.TemporaryDirectory(prefix="harness-cross-") as scratch:
            todo = [c for c in (pair.a, pair.b) if self.sides.get(c.id) is None]
            fresh = {c.id: Side.of(c.id, o, Path(scratch)) for c, o in zip(todo, self._run(todo, Path(scratch)))}
            sides = [self.sides.get(c.id) or fresh[c.id] for c in (pair.a, pair.b)]
            result = judge_cross(pair, self.run_dir, *sides,
                                 resolve=partial(resolve_artifact, store_root=self.environment.get("store")))
        checks = list(result.checks)  # all of them: recording keeps the deciding ones in ``result``
        self._write(result, None)
        return ItemResult(result.id, result.status, result.error, checks, [result.id],
                          where=self._case_file(result.id))

    def _paired(self, case: Case, out: CaseOutput) -> ItemResult:
        from harness.run.judge import judge_case

        pipelines: dict[str, dict[str, Any]] = {}
        diverged: dict[str, dict[str, Any]] = {}
        status, error, checks = judge_case(out, self.store, self.compare, self.suite, self.environment, self.drift,
                                           pipelines, diverged, self.run_dir)
        result = self._result(case, out, status, error, checks, pipelines.get(case.id), diverged.get(case.id))
        self._write(result, out.measurement)
        return ItemResult(case.id, status, error, checks, [case.id], where=self._case_file(case.id), case=result,
                          run_dir=self.run_dir, store=self.environment.get("store"))

    def _group(self, cases: Sequence[Case], outputs: list[CaseOutput]) -> ItemResult:
        from harness.run.judge import judge_expectations
        from harness.report.schema import CaseResult

        details = []
        for case, out in zip(cases, outputs, strict=True):
            # a seed's measurement is judged with the other seeds' (below); alone, only its absolute checks
            status, error, checks = judge_expectations(out)
            self._write(self._result(case, out, status, error, checks), out.measurement)
            if out.error:
                details.append(f"  seed {case.seed}: error {out.error}")
        vector, pipeline = cases[0].vector, cases[0].pipeline.name
        gid = group_id(vector, pipeline)
        status, error, checks = self._judge_group(cases, outputs)
        self._write(CaseResult(gid, vector, pipeline, None, status, error, {}, {}, checks), None)
        overall = worst([status] + ["error" for out in outputs if out.error])
        return ItemResult(gid, overall, error, checks, [c.id for c in cases] + [gid], details,
                          where=self._case_file(gid))

    def _judge_group(self, cases: Sequence[Case], outputs: list[CaseOutput]) -> tuple[str, str | None, list[Check]]:
        from harness.run.judge import judge_group

        return judge_group(cases, outputs, self.store, self.compare, self.suite)

    @staticmethod
    def _result(case: Case, out: CaseOutput, status: str, error: str | None, checks: list[Check],
                baseline_pipeline: dict[str, Any] | None = None, diverged: dict[str, Any] | None = None) -> CaseResult:
        from harness.report.schema import CaseResult, changed_params

        return CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                          out.artifacts, list(checks), out.stages, out.config,
                          changed_params(baseline_pipeline, (out.config or {}).get("pipeline")), diverged=diverged)

    def _case_file(self, case_id: str) -> Path:
        return self.run_dir / "cases" / f"{case_slug(case_id)}.json"

    def _write(self, result: CaseResult, measurement: dict[str, Any] | None) -> None:
        # what harness.run.runner records per case: its checks part, measurement, then cases/<slug>.json
        self.folder.add(result, measurement)

    def close(self) -> None:
        """End of session in this process: stop the worker, let go of the run folder."""
        self.pool.close()
        self.folder.close()


class RunBook:
    """One run folder's final report.json, in the owner process (the only one, or the xdist
    controller): it holds the folder (a shared lock) from the first item's report to the end."""

    def __init__(self, session: Session, props: dict[str, Any]) -> None:
        self.run_dir = Path(props["run_dir"])
        self.run_id: str = props["run_id"]
        self.suite: str = props["suite"]
        self.file: str = props["file"]
        self.created: str = props["created"]
        self.environment = run_environment(session, props["suite_file"], props["threads"], list(props["seeds"]),
                                           props.get("devices"), props.get("timeout_s"))
        self.results: dict[str, list[CaseResult]] = {}
        self.drift: set[str] = set()
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.complete = False
        self.summary: dict[str, int] = {}
        self.planned: list[str] | None = None
        self.folder: RunFolder | None = None
        self._open()

    def _open(self) -> None:
        """Hold the folder and read its header (the ``created`` and ``planned`` of the run)."""
        from harness.errors import HarnessError
        from harness.run.rundir import RunFolder

        try:
            self.folder = RunFolder.attach(self.run_dir)
            header = json.loads((self.run_dir / "report.json").read_text(encoding="utf-8"))
            self.created, self.planned = header["created"], list(header["planned"])
        except (HarnessError, OSError, ValueError, KeyError, TypeError) as exc:
            # never crash the session from a report hook: said in the summary and the notes
            self.problems.append(f"{self.run_dir}: the run's header is unreadable ({exc})")

    def add(self, nodeid: str, props: dict[str, Any]) -> None:
        """An item finished: read its case records (the process that ran it wrote them)."""
        from harness.report.schema import read_case_record

        try:
            cases = [read_case_record(self.run_dir / "cases" / f"{case_slug(cid)}.json", measurement=False)[0]
                     for cid in props["cases"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # never crash the session from a report hook: the item counts as missing (incomplete run)
            self.problems.append(f"{nodeid}: case file unreadable ({exc})")
            return
        self.results[nodeid] = cases
        self.created = min(self.created, props["created"])
        self.drift.update(props.get("drift") or ())
        self.notes += [n for n in props.get("notes") or () if n not in self.notes]

    def _report(self, expected: list[str] | None, *, complete: bool) -> Report:
        from harness.report.schema import Report
        from harness.run.judge import drift_notes

        order = [n for n in expected or () if n in self.results]
        order += [n for n in self.results if n not in set(order)]
        cases = [c for n in order for c in self.results[n]]
        notes = drift_notes(self.drift)
        retried = [f"{c.id} ({c.config['retried']})" for c in cases if (c.config or {}).get("retried")]
        if retried:  # as harness run notes it
            notes.append("retried after a worker crash: " + "; ".join(retried))
        return Report(self.run_id, self.suite, self.created, self.environment, cases, complete=complete,
                      notes=notes + self.notes + self.problems, planned=self.planned)

    def finish(self, expected: list[str] | None) -> None:
        """The final report.json, once: complete when every selected item of this suite reported
        and every planned case has a record; then the views."""
        mine = [n for n in expected or () if n.startswith(self.file + "::")]
        self.complete = expected is not None and all(n in self.results for n in mine) and not self.problems
        report = self._report(expected, complete=self.complete)
        report.complete = self.complete = self.complete and not report.missing
        try:
            self.folder.finish(report) if self.folder is not None else report.write(self.run_dir)
        except OSError as exc:
            self.problems.append(f"report.json not written ({exc.strerror or exc}); cases/ holds the records")
            self._close()
            return
        self.summary = dict(report.summary, cases=len(report.cases))
        self._render()  # while the folder is still held: a reader that waits for it finds the views
        self._close()

    def _close(self) -> None:
        if self.folder is not None:
            self.folder.close()
            self.folder = None

    def _render(self) -> None:
        try:
            from harness.report.render import render_report
        except ImportError:
            return
        try:
            render_report(self.run_dir)
        except Exception as exc:  # noqa: BLE001 - views are re-derivable with `harness report`
            self.problems.append(f"views not rendered ({type(exc).__name__}: {exc}); run `harness report`")

    def summary_line(self, rootpath: Path) -> str:
        s = self.summary
        n = s.get("cases", 0)
        line = (f"run {show_path(self.run_dir, rootpath)}: {n} case{'' if n == 1 else 's'}, "
                f"{s.get('passed', 0)} passed, {s.get('failed', 0)} failed, {s.get('errors', 0)} errors")
        line += "" if self.complete else " -- INCOMPLETE: not every selected case has a result"
        return "\n".join([line] + [f"  {p}" for p in self.problems])
