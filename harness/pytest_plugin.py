"""pytest plugin (``pytest11`` entry point): harness suites and reports as test items, and
the ``harness_check`` fixture.

    pytest                                  in a harness project: its default suite, one item per case
    pytest vectors/suites/nightly.toml      a suite file named on the command line
    pytest --harness-suite smoke            a suite by name or path, anywhere
    pytest --harness-report reports/<id>    gate on a finished run (incomplete or errored fails)
    def test_x(harness_check): harness_check(image, mask=mask)

**Collection runs nothing.**  A suite file becomes one item per case (a distribution suite:
one per vector x pipeline group, all its seeds compared together); collecting validates the
suite and touches no file, so ``-k`` and ``--collect-only`` cost nothing and every xdist
worker collects the same items.  A plain ``pytest`` in a harness project collects the suites
named by the ini option ``harness_suites`` (default: the project's default suite) found in
the project's suites folder, and any suite file named on the command line.  With
``--harness-suite`` or ``--harness-report`` only what they name is collected from harness.

**Node ids** are pytest's own: ``<suite file>::<case id>`` with the suite file relative to the
rootdir (``vectors/suites/smoke.toml::receipt_microprint/classic/s1``), so a failing id can
be pasted back and ``-k receipt_microprint`` / ``-k "classic and s1"`` select by case id; a
distribution group is ``<suite file>::<vector>/<pipeline>/seeds``; a ``[[cross]]`` entry (after the
suite's cases, one per vector x seed whose two sides were collected) is
``<suite file>::<vector>/<a>~<b>/s<seed>`` -- it runs any side its process has not run itself, so
it needs no other item and any xdist worker gives the same verdict; pytest's ``-k`` cannot parse
``~``: select it by node id or by words (``-k "a and b and s1"``); a case of a finished run is
``<report.json>::<case id>``.  Files outside the rootdir (a built-in suite, a report
elsewhere) get ``harness::<suite file stem>::...`` and ``harness::<run id>::...``.

**Run folder.**  Items go the way of ``harness run``: the same run folder
(:mod:`harness.run.rundir`) and the same isolating worker pool
(:mod:`harness.run.workers`).  The first process of the session to run an item of a suite
claims ``<stamp>-<suite>`` under the project's reports folder (or ``--harness-out``) --
created exclusively (``-2``, ``-3`` ... when another run or session has the name), with the
session's token in its ``.lock`` so that its xdist workers find it, and the header
``report.json`` (``complete: false``, the ``planned`` cases of the selected items).  Each
process runs its items' cases in one long-lived worker process (the suite's ``timeout_s`` kills a
hung case, a crash is retried once in a fresh worker; either way only that item fails) and
records each case (its checks part, ``cases/<slug>.json``, the stage PNGs) as it finishes;
every process holds a shared lock on ``.lock`` while it writes.  The *owner* (the only process,
or the xdist controller) writes ``report.json`` once more at the end of the session with
``complete`` (true when every selected item reported and every planned case has a record), then
the views.  The stamp is the owner's, handed to the workers with the token by
``pytest_configure_node``.

**Reports.**  ``--harness-report DIR`` makes one item per case; an errored or failed case
fails; an incomplete report (``"complete": false``) adds an item ``complete`` that fails and
that ``-k`` selects together with any case of that report.

**harness_check** follows pytest-regressions' lifecycle and syrupy's unused-snapshot rule;
see :class:`HarnessCheck` and :class:`BaselineUse`.

This module holds the hooks, options and fixture; the parts live in :mod:`harness.plugin`
(session state, collectors and items, the run folder, harness_check).  It imports nothing heavy (numpy, the measuring code, the pipeline)
until a suite file is collected or an item runs, so pytest starts fast wherever harness is
installed.
"""

from __future__ import annotations

import pytest

from harness.plugin.check import HarnessCheck
from harness.plugin.session import HarnessSession

__all__ = [
    "harness_check", "pytest_addoption", "pytest_collect_file", "pytest_collection_finish", "pytest_configure",
    "pytest_configure_node", "pytest_sessionfinish", "pytest_terminal_summary", "pytest_testnodedown",
    "pytest_xdist_node_collection_finished",
]

# ==========================================================================================
# options, hooks and the fixture
# ==========================================================================================
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness: image-pipeline regression checks")
    group.addoption("--harness-suite", metavar="NAME|PATH", default=None,
                    help="collect a harness suite: a name (the project's suites, then the built-ins) or a TOML "
                         "path; one item per case, run when the item runs. Replaces the harness_suites ini list.")
    group.addoption("--harness-report", metavar="DIR", default=None,
                    help="collect the cases of an existing run, reports/<run-id>/report.json, as items; an "
                         "errored case or an incomplete report fails")
    group.addoption("--harness-seeds", metavar="LIST", default=None,
                    help="seeds for the collected suites instead of theirs, e.g. 1,2")
    group.addoption("--harness-k", metavar="EXPR", default=None,
                    help="only collect suite cases whose id matches (harness -k syntax; pytest's -k works too)")
    group.addoption("--harness-out", metavar="DIR", default=None,
                    help="parent folder of the run folders written by suite items (default: the project's "
                         "reports folder, else ./reports)")
    group.addoption("--harness-max-checks", metavar="N", type=int, default=10,
                    help="failing checks listed per failing item (default 10)")
    group.addoption("--harness-regen", action="store_true", default=False,
                    help="harness_check: rewrite the baselines of the checks that run (the tests still fail, "
                         "so a regeneration is never mistaken for a pass)")
    group.addoption("--harness-unused", nargs="?", const="report", default=None, choices=("report", "fail"),
                    metavar="report|fail",
                    help="list harness_check baselines (*.json beside test modules that ran whole) that no "
                         "check used; =fail also fails the session (exit code 1). Write it as "
                         "--harness-unused=fail, or put it after the paths")
    parser.addini("harness_suites", type="linelist", default=None,
                  help="suites that a plain `pytest` collects in a harness project: names in the project's "
                       "suites folder or TOML paths relative to the rootdir (default: the project's default "
                       "suite; empty: none)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "harness: a harness suite case or a case of a harness report")
    session = HarnessSession(config)  # bad options are usage errors, raised before anything runs
    config.stash[HarnessSession.KEY] = session
    # its pytest_deselected / pytest_runtest_logreport hooks need this session's state
    config.pluginmanager.register(session, "harness-session")
    # --harness-suite / --harness-report name files that pytest then collects like any argument
    # (every xdist worker re-parses the same options, so every process collects the same items).
    config.args.extend(str(p) for p in session.extra_args)


def pytest_collect_file(file_path, parent):
    if file_path.suffix not in (".toml", ".json"):
        return None
    session = HarnessSession.of(parent.config)
    return session.collector_for(file_path, parent) if session is not None else None


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    state = HarnessSession.of(session.config)
    if state is not None:
        state.collected(session.items)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    session = HarnessSession.of(node.config)
    if session is not None:
        node.workerinput["harness_stamp"] = session.stamp_for_workers()
        node.workerinput["harness_token"] = session.token


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids) -> None:
    session = HarnessSession.of(node.config)
    if session is not None:
        session.expect(list(ids))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    session = HarnessSession.of(node.config)
    if session is not None:
        session.worker_done(getattr(node, "workeroutput", None) or {})


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    state = HarnessSession.of(session.config)
    if state is None:
        return
    if state.finish(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # --harness-unused=fail found unused baselines


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    session = HarnessSession.of(config)
    lines = session.summary_lines() if session is not None else []
    if lines:
        terminalreporter.write_sep("-", "harness")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def harness_check(request: pytest.FixtureRequest):
    """Measure an image and compare it with a baseline stored beside the test module.

    ``harness_check(image, mask=None, *, anchors=None, tile=None, ring=8, config=None,
    tolerances=None, name=None)`` -- the baseline is ``<module dir>/<module stem>/<test
    name>[-<name>].json``.  A missing baseline is written and the test fails; a mismatch fails
    with the worst checks and writes ``<...>.obtained.json``; ``--harness-regen`` rewrites the
    baseline and fails; a match passes and returns the checks.
    """
    config = request.config
    return HarnessCheck(request.node, regen=config.getoption("harness_regen"),
                        max_checks=config.getoption("harness_max_checks"), rootpath=config.rootpath)
