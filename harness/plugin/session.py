"""Session state of the plugin: options, project, run folders, the owner's results, unused baselines.

The top of the plugin's modules: it imports ``check``, ``items`` and ``runs`` (which reach it
through :func:`harness.plugin.common.get_session`, typed as the ``Session`` protocol it
implements) and is imported by ``harness.pytest_plugin`` only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from harness.project import Project

from harness.plugin.check import BaselineUse
from harness.plugin.common import SESSION_KEY, STAMP_FORMAT, get_session, show_path
from harness.plugin.items import ReportFile, SuiteFile
from harness.plugin.runs import RunBook, RunContext


# ==========================================================================================
# session state: options, project, run ids
# ==========================================================================================
_NOT_SUITES = ("pyproject.toml", "harness.toml")


class HarnessSession:
    """Options, project, run folders and (in the owner) the reported results of one session.

    Registered as a plugin too: its ``pytest_deselected`` and ``pytest_runtest_logreport``
    hooks, which pytest calls without the config, record into this session's state.
    """

    KEY = SESSION_KEY

    @classmethod
    def of(cls, config: pytest.Config) -> HarnessSession | None:
        """This config's session (None before ``pytest_configure`` made one): the hooks' view of
        :func:`~harness.plugin.common.get_session`, which types it as what items and runs read."""
        return cast("HarnessSession | None", get_session(config))

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        #: The owner writes report.json: the only process, or the xdist controller.
        self.is_owner = self.workerinput is None
        opt = config.getoption
        self.max_checks: int = opt("harness_max_checks")
        if self.max_checks < 1:
            raise pytest.UsageError(f"--harness-max-checks {self.max_checks}: expected an integer >= 1")
        self.seeds = self._parse_seeds(opt("harness_seeds"))
        self.harness_k: str | None = opt("harness_k")
        self.unused_mode: str | None = opt("harness_unused")
        report, suite = opt("harness_report"), opt("harness_suite")
        if report and suite:
            raise pytest.UsageError("use either --harness-report or --harness-suite, not both")
        self._project: Project | None = None
        self._named: set[Path] | None = None
        self.report_file: Path | None = None
        self.report = None
        self.suite_file: Path | None = None
        if report:
            self.report_file, self.report = self._load_report(report)
        if suite:
            self.suite_file = self._find_suite(suite)
        #: Without --harness-suite/--harness-report, the ini list `harness_suites` is collected.
        self.implicit = not (report or suite)
        self._stamp: str | None = self.workerinput.get("harness_stamp") if self.workerinput else None
        #: What the run folders of this session carry in their .lock (the same in its xdist workers).
        self.token: str = (self.workerinput or {}).get("harness_token") or uuid.uuid4().hex
        #: xdist workers in this session (0 without xdist).
        self.workers: int = int(self.workerinput.get("workercount", 1)) if self.workerinput else 0
        self.runs: dict[Path, RunContext] = {}
        self.run_names: dict[Path, str] = {}
        self.books: dict[str, RunBook] = {}
        #: Owner: the selected node ids in collection order (None until known).
        self.expected: list[str] | None = None
        #: Files (suite files, test modules) of which some items were not selected.
        self.partial: set[Path] = set(self._partial_from_args())
        self._use: BaselineUse | None = None
        self.unused: list[Path] = []

    # -- options -----------------------------------------------------------------
    @property
    def extra_args(self) -> list[Path]:
        """Files that the options name, collected like command-line arguments."""
        return [p for p in (self.report_file, self.suite_file) if p is not None]

    @staticmethod
    def _parse_seeds(text: str | None) -> list[int] | None:
        if text is None:
            return None
        from harness.suite.selection import parse_seeds as _seeds
        from harness.errors import ConfigError

        try:
            return _seeds(text)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc).replace("--seeds", "--harness-seeds", 1)) from None

    def _load_report(self, given: str):
        from harness.errors import HarnessError
        from harness.report.schema import load_report

        path = self._abs(given)
        try:
            report = load_report(path)
        except HarnessError as exc:
            raise pytest.UsageError(f"--harness-report: {exc}") from None
        return (path / "report.json" if path.is_dir() else path), report

    def _find_suite(self, given: str) -> Path:
        from harness.errors import HarnessError
        from harness.suite.selection import find_suite

        try:
            found = find_suite(given if Path(given).is_absolute() or Path(given).suffix != ".toml"
                               else self._abs(given), self.project().suite_dirs)
            return self._abs(found)
        except HarnessError as exc:
            raise pytest.UsageError(str(exc).replace("--suite ", "--harness-suite ", 1)) from None

    def _abs(self, path: str | Path) -> Path:
        """A command-line path, relative to the folder pytest was started in."""
        return (Path(self.config.invocation_params.dir) / path).resolve()

    def _partial_from_args(self) -> list[Path]:
        # `pytest tests/test_x.py::test_a` collects only part of test_x.py
        return [self._abs(str(arg).split("::")[0]) for arg in self.config.args if "::" in str(arg)]

    # -- project, run ids ---------------------------------------------------
    def project(self) -> Project:
        """The harness project, found once: from the invocation folder upward, else from the
        rootdir; ``--harness-out`` overrides its reports folder.  Raises ConfigError."""
        if self._project is None:
            from harness.project import load_project

            start = self.config.invocation_params.dir
            project = load_project(start)
            if not project.found and Path(self.config.rootpath) != Path(start):
                other = load_project(self.config.rootpath)
                project = other if other.found else project
            out = self.config.getoption("harness_out")
            self._project = project.with_overrides(reports=self._abs(out)) if out else project
        return self._project

    def stamp(self) -> str:
        """The run-id stamp of this session: the controller's under xdist, else picked now."""
        if self._stamp is None:
            self._stamp = _free_stamp(self.project().reports)
        return self._stamp

    def stamp_for_workers(self) -> str:
        """Controller side of ``pytest_configure_node``: one stamp for every worker."""
        self.workers += 1
        if self._stamp is None:
            from harness.errors import HarnessError

            try:
                self._stamp = _free_stamp(self.project().reports)
            except HarnessError:  # a broken project fails the workers' collection, with its message
                self._stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
        return self._stamp

    def run_for(self, suite_file) -> RunContext:
        """The run folder of a collected suite file in this process (created lazily)."""
        run = self.runs.get(suite_file.path)
        if run is None:
            name = self.run_names.get(suite_file.path, suite_file.suite.name)
            run = self.runs[suite_file.path] = RunContext(self, suite_file, f"{self.stamp()}-{name}")
        return run

    # -- collection ------------------------------------------------------------------
    def collector_for(self, file_path: Path, parent: pytest.Collector):
        from harness.errors import HarnessError

        if file_path.suffix == ".json":
            if self.report_file is not None and file_path.resolve() == self.report_file:
                return ReportFile.create(parent, file_path, self.report)
            return None
        try:
            wanted = self._is_suite(file_path, parent.session)
        except HarnessError as exc:
            raise parent.CollectError(str(exc)) from None
        return SuiteFile.create(parent, file_path) if wanted else None

    def _is_suite(self, file_path: Path, session: pytest.Session) -> bool:
        resolved = file_path.resolve()
        if resolved == self.suite_file:
            return True
        if file_path.name in _NOT_SUITES:
            return False
        if session.isinitpath(file_path):
            return True  # `pytest vectors/suites/nightly.toml`
        if not self.implicit:
            return False
        if self._named is None:
            self._named = self._named_suites()
        return resolved in self._named

    def _named_suites(self) -> set[Path]:
        project = self.project()
        if not project.found or project.suites is None:
            return set()
        names = self.config.getini("harness_suites")
        # a path in the ini file is relative to it; the project's default suite, to the project
        base = self.config.inipath.parent if self.config.inipath else Path(self.config.rootpath)
        if names is None:
            names, base = [project.default_suite], project.root
        return {(base / name).resolve() if name.endswith(".toml") else (project.suites / f"{name}.toml").resolve()
                for name in names}

    def pytest_deselected(self, items) -> None:
        self.partial.update(Path(item.path).resolve() for item in items)

    def collected(self, items) -> None:
        """After collection (not in the xdist controller): what was selected."""
        if self.is_owner:
            self.expect([item.nodeid for item in items])
        # Two suites of one name get distinct run folders: the same answer in every process.
        seen: dict[str, int] = {}
        for item in items:
            parent = item.parent
            if isinstance(parent, SuiteFile) and parent.path not in self.run_names:
                n = seen[parent.suite.name] = seen.get(parent.suite.name, 0) + 1
                self.run_names[parent.path] = parent.suite.name if n == 1 else f"{parent.suite.name}-{n}"
        if self.unused_mode:
            self.use.collected(items, self.partial)

    def expect(self, ids: list[str]) -> None:
        if self.expected is None:
            self.expected = ids

    # -- results (owner) -----------------------------------------------------------------
    @property
    def use(self) -> BaselineUse:
        if self._use is None:
            self._use = BaselineUse()
        return self._use

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # In the process that ran the item and, under xdist, again in the controller: the owner acts.
        if not self.is_owner:
            return
        if report.when == "call":
            for name, value in report.user_properties:
                if name == "harness_case":
                    self._book(value).add(report.nodeid, value)
                elif name == "harness_baseline":
                    self.use.used.add(value)
        self.use.outcome(report)

    def _book(self, props: dict[str, Any]) -> RunBook:
        book = self.books.get(props["run_dir"])
        if book is None:
            book = self.books[props["run_dir"]] = RunBook(self, props)
        return book

    def worker_done(self, workeroutput: dict[str, Any]) -> None:
        self.use.merge(workeroutput.get("harness_modules"))

    def finish(self, config: pytest.Config) -> bool:
        """End of session: workers hand their collection facts over, the owner writes the
        reports.  True when ``--harness-unused=fail`` should fail the session."""
        for run in self.runs.values():  # this process's workers stopped, its hold on run folders let go
            run.close()
        if not self.is_owner:
            config.workeroutput["harness_modules"] = self.use.modules  # type: ignore[attr-defined]
            return False
        for book in self.books.values():
            book.finish(self.expected)
        if self.unused_mode:
            self.unused = self.use.unused()
        return self.unused_mode == "fail" and bool(self.unused)

    def summary_lines(self) -> list[str]:
        root = Path(self.config.rootpath)
        lines = [book.summary_line(root) for book in self.books.values()]
        if self.unused:
            lines.append(f"{len(self.unused)} unused harness_check baseline(s): no check used them in this session")
            lines += [f"  unused {show_path(p, root)}" for p in self.unused]
            if self.unused_mode != "fail":
                lines.append("  (delete them if their tests are gone; --harness-unused=fail fails the session)")
        return lines


def _free_stamp(reports: Path) -> str:
    """A UTC second that no run folder under ``reports`` starts with (later seconds if taken)."""
    taken = {p.name.split("-", 1)[0] for p in reports.iterdir()} if reports.is_dir() else set()
    t = datetime.now(timezone.utc).replace(microsecond=0)
    while t.strftime(STAMP_FORMAT) in taken:
        t += timedelta(seconds=1)
    return t.strftime(STAMP_FORMAT)
