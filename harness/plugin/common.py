"""What every part of the plugin shares: the session's stash key, the interfaces between the
collectors/items and the run folders (:class:`Session`, :class:`Run`, :class:`ItemResult`),
path display, run-id stamps.

The plugin's modules form layers, lowest first: this module; ``check``, ``items`` and ``runs``
(each importing this one only); ``session`` (the one module on top, importing them);
``harness.pytest_plugin`` (the hooks).  Items and run folders reach the session through
:func:`get_session`, typed as the :class:`Session` protocol -- what they read of it -- so that
nothing below ``session`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import pytest

from harness.naming import RUN_STAMP_FORMAT as STAMP_FORMAT  # run ids as `harness run` names them

if TYPE_CHECKING:
    from harness.checks.cross import CrossPair
    from harness.comparing.engine import Check
    from harness.project import Project
    from harness.report.schema import CaseResult
    from harness.suite.suites import Case

__all__ = ["ItemResult", "Run", "SESSION_KEY", "STAMP_FORMAT", "Session", "get_session", "show_path"]


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
    case: CaseResult | None = None  # a paired case as recorded (its artifacts, changed, diverged)
    run_dir: Path | None = None  # where its run-folder artifacts are
    store: str | None = None  # the image store of its ``sha256:`` artifacts


@runtime_checkable
class Run(Protocol):
    """What an item asks of its suite's run folder in this process (``runs.RunContext``)."""

    def execute(self, cases: Sequence[Case], *, group: bool) -> ItemResult: ...

    def execute_cross(self, pair: CrossPair) -> ItemResult: ...

    def props(self, result: ItemResult) -> dict[str, Any]: ...


@runtime_checkable
class Session(Protocol):
    """What the collectors, items and run folders read of the session (``session.HarnessSession``)."""

    config: pytest.Config
    #: --harness-seeds (None: each suite's own seeds) and --harness-k.
    seeds: list[int] | None
    harness_k: str | None
    #: --harness-max-checks: failing checks listed per failing item.
    max_checks: int
    #: xdist workers in this session (0 without xdist).
    workers: int
    #: What the run folders of this session carry in their .lock.
    token: str
    #: Files of which some items were not selected.
    partial: set[Path]

    def project(self) -> Project: ...

    def run_for(self, suite_file: pytest.File) -> Run: ...


SESSION_KEY: pytest.StashKey[Session] = pytest.StashKey()


def get_session(config: pytest.Config) -> Session | None:
    return config.stash.get(SESSION_KEY, None)


def show_path(path: Path | str, rootpath: Path) -> str:
    """``path`` relative to the rootdir when it is inside it (as pytest shows paths)."""
    try:
        return Path(path).relative_to(rootpath).as_posix()
    except ValueError:
        return str(path)
