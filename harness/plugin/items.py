"""Collectors and items: suite files -> one item per case (or distribution group); reports -> one item per case."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pytest

from harness.naming import group_id

from harness.status import GATING

if TYPE_CHECKING:
    from harness.comparing.engine import Check
    from harness.suite.suites import Case
    from harness.report.schema import CaseResult, Report

from harness.plugin.common import get_session, show_path


# ==========================================================================================
# suite files and reports as items
# ==========================================================================================
class HarnessCaseFailed(Exception):
    """A harness case failed or errored; the message lists its worst checks."""


def failure_message(case_id: str, status: str, error: str | None, checks: Sequence[Check], max_checks: int,
                    where: str = "", details: Sequence[str] = ()) -> str:
    from harness.report.text import check_lines

    lines = [f"harness case {case_id}: {status}"]
    if error:
        lines.append(f"  {error}")
    lines += details
    lines += check_lines(checks, max_checks, where=where)
    return "\n".join(lines)


def _outside_nodeid(config: pytest.Config, path: Path, fallback: str) -> str | None:
    """None (pytest's own, path-based node id) for a file under the rootdir, else ``fallback``."""
    try:
        path.relative_to(config.rootpath)
        return None
    except ValueError:
        return fallback


def _add_ci_properties(item: pytest.Item, checks: Sequence[Check], case: CaseResult | None = None,
                       run_dir: Path | None = None, store: str | Path | None = None) -> None:
    """A failing item's stage, slice, box, artifacts, what changed and diverged as ``user_properties``
    (``--junitxml`` writes them as ``<property>`` elements): :func:`harness.report.junit.junit_properties`."""
    from harness.report.junit import junit_properties

    item.user_properties.extend(junit_properties(checks, case, run_dir, store))


class _HarnessItem(pytest.Item):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_marker(pytest.mark.harness)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, HarnessCaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"harness {self.name}"


# -- suites ----------------------------------------------------------------------------
class SuiteFile(pytest.File):
    """A suite TOML: one item per case (paired) or per vector × pipeline group (distribution)."""

    @classmethod
    def create(cls, parent: pytest.Collector, path: Path) -> SuiteFile:
        return cls.from_parent(parent, path=path, nodeid=_outside_nodeid(parent.config, path, f"harness::{path.stem}"))

    def collect(self):
        from harness.errors import HarnessError
        from harness.suite.suites import load_suite

        session = get_session(self.config)
        try:
            self.suite = load_suite(self.path, project=session.project())
            cases = self.suite.cases(seeds=session.seeds, k_expr=session.harness_k)
        except HarnessError as exc:
            raise self.CollectError(str(exc)) from None
        if self.suite.mode == "paired":
            for case in cases:
                yield SuiteCaseItem.from_parent(self, name=case.id, cases=(case,), group=False)
        else:
            groups: dict[tuple[str, str], list[Case]] = {}
            for case in cases:
                groups.setdefault((case.vector, case.pipeline.name), []).append(case)
            for (vector, pipeline), members in groups.items():
                yield SuiteCaseItem.from_parent(self, name=group_id(vector, pipeline), cases=tuple(members),
                                                group=True)
        if self.suite.cross:  # after the cases: one item per cross entry whose two sides were collected
            from harness.checks.cross import plan_cross

            for pair in plan_cross(self.suite, cases)[0]:
                yield CrossCaseItem.from_parent(self, name=pair.id, pair=pair)


def _refused(exc: BaseException) -> HarnessCaseFailed:
    """The run folder could not be claimed or a record written: the item fails with the reason
    (a one-line message naming the path, never a traceback); the session goes on."""
    if isinstance(exc, OSError):
        return HarnessCaseFailed(f"{exc.filename}: cannot write the run folder ({exc.strerror or exc})")
    return HarnessCaseFailed(str(exc))


class SuiteCaseItem(_HarnessItem):
    """Runs its case when it runs (a distribution group: all its seeds, compared together), in the
    run's isolating worker process: a hang past the suite's ``timeout_s`` or a crash fails this item only."""

    def __init__(self, *, cases: tuple[Case, ...], group: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cases = cases
        self.group = group

    @property
    def case_ids(self) -> list[str]:
        """What the item records: its case (a group: every seed, then the group's comparison)."""
        ids = [c.id for c in self.cases]
        return ids + [group_id(self.cases[0].vector, self.cases[0].pipeline.name)] if self.group else ids

    def runtest(self) -> None:
        __tracebackhide__ = True
        from harness.errors import HarnessError

        session = get_session(self.config)
        try:
            run = session.run_for(self.parent)
            result = run.execute(self.cases, group=self.group)
        except (HarnessError, OSError) as exc:
            raise _refused(exc) from None
        self.user_properties.append(("harness_case", run.props(result)))
        if result.status in GATING:
            _add_ci_properties(self, result.checks, result.case, result.run_dir, result.store)
            where = show_path(result.where, self.config.rootpath) if result.where else ""
            raise HarnessCaseFailed(failure_message(result.case_id, result.status, result.error, result.checks,
                                                    session.max_checks, where, result.details))


class CrossCaseItem(_HarnessItem):
    """A cross-model entry (``vector/a+b/sSEED``): b's image against a's.  It needs no other
    item: sides this process has not run (another xdist worker's, or deselected) it runs itself
    through the same code path (the stage cache makes a rerun cheap)."""

    def __init__(self, *, pair, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pair = pair

    @property
    def case_ids(self) -> list[str]:
        return [self.pair.id]

    def runtest(self) -> None:
        __tracebackhide__ = True
        from harness.errors import HarnessError

        session = get_session(self.config)
        try:
            run = session.run_for(self.parent)
            result = run.execute_cross(self.pair)
        except (HarnessError, OSError) as exc:
            raise _refused(exc) from None
        self.user_properties.append(("harness_case", run.props(result)))
        if result.status == "skip":
            pytest.skip(result.error or "cross-model entry: nothing to compare")
        if result.status in GATING:
            _add_ci_properties(self, result.checks)
            where = show_path(result.where, self.config.rootpath) if result.where else ""
            raise HarnessCaseFailed(failure_message(result.case_id, result.status, result.error, result.checks,
                                                    session.max_checks, where))


# -- reports -------------------------------------------------------------------------------
class ReportFile(pytest.File):
    """A finished run's report.json: one item per case, plus ``complete`` when it is not."""

    @classmethod
    def create(cls, parent: pytest.Collector, path: Path, report: Report) -> ReportFile:
        nodeid = _outside_nodeid(parent.config, path, f"harness::{report.run_id}")
        node = cls.from_parent(parent, path=path, nodeid=nodeid)
        node.report = report
        return node

    def collect(self):
        report = self.report
        if not report.complete:
            # Fails whatever -k selects of this report: it matches every case id of it.
            item = ReportCompleteItem.from_parent(self, name="complete")
            item.extra_keyword_matches.update(c.id for c in report.cases)
            yield item
        for case in report.cases:
            yield ReportCaseItem.from_parent(self, name=case.id, case=case)


class ReportCaseItem(_HarnessItem):
    def __init__(self, *, case: CaseResult, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        __tracebackhide__ = True
        case = self.case
        if case.status == "skip":
            pytest.skip(case.error or "skipped by harness")
        if case.status in GATING:
            from harness.run.store import store_root_of

            _add_ci_properties(self, case.checks, case, self.path.parent, store_root_of(self.parent.report.environment))
            session = get_session(self.config)
            raise HarnessCaseFailed(failure_message(case.id, case.status, case.error, case.checks, session.max_checks,
                                                    show_path(self.path, self.config.rootpath)))


class ReportCompleteItem(_HarnessItem):
    """Fails: the report was written by an interrupted run (``"complete": false``)."""

    def runtest(self) -> None:
        __tracebackhide__ = True
        report = self.parent.report
        raise HarnessCaseFailed(
            f"report is incomplete: the run was interrupted before every case finished "
            f"({len(report.cases)} cases recorded in {show_path(self.path, self.config.rootpath)}); "
            f"rerun the suite for a complete report")
