"""The run folder that items write: cases as they run, report.json and views from the owner."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence


from harness.naming import case_slug, group_id
from harness.status import worst

if TYPE_CHECKING:
    from harness.comparing.engine import Check
    from harness.pipeline.case import CaseOutput
    from harness.pipeline.suite import Case, Suite
    from harness.report.schema import CaseResult

from harness.plugin.common import show_path

if TYPE_CHECKING:
    from harness.plugin.session import HarnessSession


# ==========================================================================================
# the run folder
# ==========================================================================================
@dataclass
class ItemResult:
    """What one item's cases came to: the item passes unless ``status`` gates."""

    case_id: str
    status: str
    error: str | None
    checks: list[Check]
    case_ids: list[str]
    details: list[str] = field(default_factory=list)  # e.g. the errored seeds of a distribution group
    where: Path | None = None  # the case file that holds every check


def run_environment(session: HarnessSession, suite_file: str, threads: int, seeds: list[int],
                    devices: list[str] | None = None) -> dict[str, Any]:
    """report.json's ``environment``: the fingerprint (with the ``devices`` the suite's stages run
    on) plus how pytest ran the suite."""
    from harness.pipeline.environment import fingerprint

    keyword = session.config.getoption("keyword") or None
    return {**fingerprint(threads, devices=devices), "executor": "pytest-xdist" if session.workers else "pytest",
            "workers": max(session.workers, 1), "suite_file": suite_file, "project": session.project().to_dict(),
            "seeds": seeds, "k": keyword or session.harness_k}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunContext:
    """One suite's run folder in the process that runs its items."""

    def __init__(self, session: HarnessSession, suite: Suite, file_nodeid: str, run_id: str) -> None:
        from harness.pipeline.baselines import BaselineStore
        from harness.pipeline.environment import set_threads, stage_devices

        project = session.project()
        self.session = session
        self.suite = suite
        self.file = file_nodeid
        self.run_id = run_id
        self.run_dir = project.reports / run_id
        self.store = BaselineStore(suite.name, project.baselines)
        self.compare = suite.compare_config()
        self.seeds = list(session.seeds or suite.seeds)
        set_threads(suite.threads)  # before the environment is read: it records what was applied
        self.devices = stage_devices(suite.cases(seeds=self.seeds))
        self.environment = run_environment(session, str(suite.path), suite.threads, self.seeds, self.devices)
        self.created = _now()
        self.drift: set[str] = set()
        self.notes = self._obsolete_notes()
        self.sides: dict[str, Any] = {}  # case id -> cross.Side of the cases run here (suites with [[cross]])

    def _obsolete_notes(self) -> list[str]:
        # Only when the whole suite file was selected: a -k selection says nothing about the rest.
        if self.suite.path.resolve() in self.session.partial:
            return []
        from harness.errors import BaselineError
        from harness.pipeline.suite import match_k

        k = self.session.harness_k
        try:
            obsolete = self.store.obsolete(self.suite.baseline_ids(), (lambda c: match_k(k, c)) if k else None)
        except BaselineError:
            return []  # a corrupt manifest errors every case, with its message
        return [f"obsolete baseline {self.store.path_for(cid)}: its case is no longer in the suite "
                f"(remove with `harness bake --suite {self.suite.ref} --prune`)" for cid in obsolete]

    def props(self, result: ItemResult) -> dict[str, Any]:
        """What the owner needs to find and assemble the item's cases (``user_properties``)."""
        return {"run_dir": str(self.run_dir), "run_id": self.run_id, "suite": self.suite.name, "file": self.file,
                "suite_file": str(self.suite.path), "threads": self.suite.threads, "seeds": self.seeds,
                "devices": self.devices, "created": self.created, "cases": result.case_ids, "drift": sorted(self.drift),
                "notes": self.notes}

    def execute(self, cases: Sequence[Case], *, group: bool) -> ItemResult:
        """Run the item's case (or, for a distribution group, all its seeds) and write the case files."""
        from harness.pipeline.case import execute_case

        outputs = [execute_case(c, self.suite, self.run_dir, self.session.cache(), seeds=self.seeds) for c in cases]
        if self.suite.cross:
            from harness.pipeline.cross import Side

            self.sides.update((c.id, Side.of(c.id, o)) for c, o in zip(cases, outputs))
        if not group:
            return self._paired(cases[0], outputs[0])
        return self._group(cases, outputs)

    def execute_cross(self, pair) -> ItemResult:
        """A cross entry: its sides' images compared.  A side this process ran is read from the run
        folder; any other is run now into a scratch folder (never writing another item's files) and
        the compared image is copied to the entry's artifacts."""
        import tempfile

        from harness.pipeline.case import execute_case
        from harness.pipeline.cross import Side, judge_cross

        with tempfile.TemporaryDirectory(prefix="harness-cross-") as scratch:
            sides = [self.sides.get(c.id) or Side.of(c.id, execute_case(c, self.suite, Path(scratch),
                                                                      self.session.cache()), Path(scratch))
                     for c in (pair.a, pair.b)]
            result = judge_cross(pair, self.run_dir, *sides)
        self._write(result, None)
        return ItemResult(result.id, result.status, result.error, result.checks, [result.id],
                          where=self._case_file(result.id))

    def _paired(self, case: Case, out: CaseOutput) -> ItemResult:
        from harness.pipeline.case import judge_case

        status, error, checks = judge_case(out, self.store, self.compare, self.suite, self.environment, self.drift)
        self._write(self._result(case, out, status, error, checks), out.measurement)
        return ItemResult(case.id, status, error, checks, [case.id], where=self._case_file(case.id))

    def _group(self, cases: Sequence[Case], outputs: list[CaseOutput]) -> ItemResult:
        from harness.pipeline.case import judge_expectations
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
        from harness.pipeline.case import judge_group

        return judge_group(cases, outputs, self.store, self.compare, self.suite)

    @staticmethod
    def _result(case: Case, out: CaseOutput, status: str, error: str | None, checks: list[Check]) -> CaseResult:
        from harness.report.schema import CaseResult

        return CaseResult(case.id, case.vector, case.pipeline.name, case.seed, status, error, out.timings,
                          out.artifacts, checks, out.stages, out.config)

    def _case_file(self, case_id: str) -> Path:
        return self.run_dir / "cases" / f"{case_slug(case_id)}.json"

    def _write(self, result: CaseResult, measurement: dict[str, Any] | None) -> None:
        from harness.fsio import atomic_write_text

        # the document harness.pipeline.runner writes per case (harness bake --from-report reads it)
        atomic_write_text(self._case_file(result.id), json.dumps(
            {"case": result.to_dict(), "measurement": measurement}, allow_nan=False))


class RunBook:
    """One run folder's report.json and checks.csv, in the owner process."""

    def __init__(self, session: HarnessSession, props: dict[str, Any]) -> None:
        self.run_dir = Path(props["run_dir"])
        self.run_id: str = props["run_id"]
        self.suite: str = props["suite"]
        self.file: str = props["file"]
        self.created: str = props["created"]
        self.environment = run_environment(session, props["suite_file"], props["threads"], list(props["seeds"]),
                                           props.get("devices"))
        self.results: dict[str, list[CaseResult]] = {}
        self.drift: set[str] = set()
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.complete = False
        self.summary: dict[str, int] = {}
        self._csv_started = False
        self._marked = False

    def add(self, nodeid: str, props: dict[str, Any], expected: list[str] | None) -> None:
        """An item finished: read its case files and append their checks (report.json: see below)."""
        from harness.report.schema import CSV_COLUMNS, CaseResult, checks_csv_rows

        try:
            cases = [CaseResult.from_dict(json.loads((self.run_dir / "cases" / f"{case_slug(cid)}.json")
                                                     .read_text(encoding="utf-8"))["case"]) for cid in props["cases"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # never crash the session from a report hook: the item counts as missing (incomplete run)
            self.problems.append(f"{nodeid}: case file unreadable ({exc})")
            return
        self.results[nodeid] = cases
        self.created = min(self.created, props["created"])
        self.drift.update(props.get("drift") or ())
        self.notes += [n for n in props.get("notes") or () if n not in self.notes]
        rows = ("" if self._csv_started else ",".join(CSV_COLUMNS) + "\n") + "".join(checks_csv_rows(c) for c in cases)
        try:
            with open(self.run_dir / "checks.csv", "a" if self._csv_started else "w", encoding="utf-8",
                      newline="") as fh:
                fh.write(rows)
            self._csv_started = True
        except OSError as exc:  # a full or read-only disk: said in the summary and notes, the session goes on
            self.problems.append(f"{nodeid}: its checks.csv rows were not written ({exc.strerror or exc}); "
                                 f"report.json and cases/ hold its checks")
        if not self._marked:  # report.json twice per run: incomplete at the first result, final at the end;
            # meanwhile load_report merges cases/ into an incomplete report (never a rewrite per item)
            self._report(expected, complete=False).write(self.run_dir)
            self._marked = True

    def _report(self, expected: list[str] | None, *, complete: bool):
        from harness.report.schema import Report

        order = [n for n in expected or () if n in self.results]
        order += [n for n in self.results if n not in set(order)]
        notes = ["baselines were baked in a different environment: " + ", ".join(sorted(self.drift))] \
            if self.drift else []
        return Report(self.run_id, self.suite, self.created, self.environment,
                      [c for n in order for c in self.results[n]], complete=complete,
                      notes=notes + self.notes + self.problems)

    def finish(self, expected: list[str] | None) -> None:
        """The final report.json: complete when every selected item of this suite reported."""
        mine = [n for n in expected or () if n.startswith(self.file + "::")]
        self.complete = expected is not None and all(n in self.results for n in mine)
        report = self._report(expected, complete=self.complete)
        report.write(self.run_dir)
        self.summary = dict(report.summary, cases=len(report.cases))
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
