"""pytest plugin (``pytest11`` entry point): harness reports and suites as test items.

    pytest --harness-report reports/<run-id>     one item per case of an existing run
    pytest --harness-suite smoke                 run a suite first, then one item per case

The plugin only adapts reports to items; the comparison engine decides pass or
fail.  It imports nothing heavy unless one of its options is used, so pytest
starts as fast as without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = ["HarnessCaseItem", "HarnessCaseFailed"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "image-pipeline regression checks (harness)")
    group.addoption("--harness-report", metavar="DIR", default=None,
                    help="turn the cases of reports/<run-id>/report.json into test items")
    group.addoption("--harness-suite", metavar="NAME", default=None,
                    help="run a harness suite (name or TOML path) and turn its cases into test items")
    group.addoption("--harness-seeds", metavar="LIST", default=None, help="seeds for --harness-suite, e.g. 1,2")
    group.addoption("--harness-k", metavar="EXPR", default=None, help="-k filter for --harness-suite cases")
    group.addoption("--harness-out", metavar="DIR", default=None,
                    help="parent directory for the run of --harness-suite (default: reports/)")
    group.addoption("--harness-max-checks", type=int, default=10,
                    help="failing checks listed per failing case (default 10)")


class HarnessCaseFailed(Exception):
    """A harness case failed or errored; the message lists its worst checks."""


class HarnessCaseItem(pytest.Item):
    def __init__(self, *, case, run_dir: Path, max_checks: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.run_dir = run_dir
        self.max_checks = max_checks
        self.add_marker(pytest.mark.harness)

    def runtest(self) -> None:
        __tracebackhide__ = True
        case = self.case
        if case.status == "skip":
            pytest.skip(case.error or "skipped by harness")
        if case.status == "pass":
            return
        raise HarnessCaseFailed(self._message())

    def _message(self) -> str:
        case = self.case
        lines = [f"harness case {case.id}: {case.status}"]
        if case.error:
            lines.append(f"  {case.error}")
        bad = sorted((c for c in case.checks if c.status in ("fail", "error")), key=lambda c: c.severity,
                     reverse=True)
        for c in bad[: self.max_checks]:
            def n(v):
                return f"{v:.4g}" if v is not None else "-"
            lines.append(f"  {c.status:5} {c.metric} [{c.slice}]: {n(c.value)} vs baseline {n(c.baseline)} "
                         f"(delta {n(c.delta)}, tolerance {n(c.tolerance)})")
        if len(bad) > self.max_checks:
            lines.append(f"  ... {len(bad) - self.max_checks} more failing checks in {self.run_dir / 'report.json'}")
        return "\n".join(lines)

    def repr_failure(self, excinfo, style=None):  # noqa: D102 - pytest API
        if isinstance(excinfo.value, HarnessCaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.run_dir / "report.json", None, f"harness::{self.case.id}"


def _run_dir(config: pytest.Config) -> Path | None:
    report = config.getoption("harness_report")
    suite = config.getoption("harness_suite")
    if report and suite:
        raise pytest.UsageError("use either --harness-report or --harness-suite, not both")
    if report:
        return Path(report)
    if not suite:
        return None
    from harness.cli.pipeline import _seeds
    from harness.errors import HarnessError
    from harness.pipeline.runner import run_suite
    from harness.pipeline.suite import load_suite

    try:
        loaded = load_suite(suite)
        out = config.getoption("harness_out")
        _, run_dir = run_suite(loaded, out_root=Path(out) if out else None,
                               seeds=_seeds(config.getoption("harness_seeds")), k_expr=config.getoption("harness_k"),
                               cache_dir=Path(".harness-cache"))
    except HarnessError as exc:
        raise pytest.UsageError(f"--harness-suite {suite}: {exc}") from None
    return run_dir


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "harness: a case of a harness report")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    run_dir = _run_dir(config)
    if run_dir is None:
        return
    from harness.errors import HarnessError
    from harness.report.schema import load_report

    try:
        report = load_report(run_dir)
    except HarnessError as exc:
        raise pytest.UsageError(f"--harness-report: {exc}") from None
    max_checks = config.getoption("harness_max_checks")
    for case in report.cases:
        items.append(HarnessCaseItem.from_parent(session, name=case.id, nodeid=f"harness::{case.id}", case=case,
                                                 run_dir=Path(run_dir), max_checks=max_checks))
