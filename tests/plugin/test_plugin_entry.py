"""The plugin as pytest loads it: its options, its marker, a light import."""

import subprocess
import sys

pytest_plugins = ["pytester"]


def test_help_lists_the_harness_options_in_one_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "harness: image-pipeline regression checks:",
        "  --harness-suite=NAME|PATH",
        "*--harness-report=DIR*collect the cases of an existing run*",
        "*--harness-seeds=LIST*",
        "*--harness-k=EXPR*",
        "*--harness-out=DIR*",
        "  --harness-max-checks=N",
        "*--harness-regen*rewrite the baselines*",
        "  --harness-unused=[report|fail]",
    ])
    result.stdout.fnmatch_lines(["  harness_suites (linelist):*"])


def test_the_harness_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.harness: a harness suite case or a case of a harness report"])


def test_importing_the_plugin_imports_nothing_heavy():
    code = ("import sys, harness.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'PIL', 'scipy', 'skimage', 'cv2', "
            "'torch', 'pandas') or m.startswith(('harness.measuring', 'harness.run', 'harness.suite', 'harness.stages', 'harness.models', 'harness.checks', 'harness.comparing'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_session_implements_what_items_and_runs_read_of_it(pytester):
    """Items and run folders type the session as common.Session (so that nothing below
    plugin.session imports it): the real session and run folder must provide every member."""
    from harness.plugin.common import Run, Session, get_session
    from harness.plugin.runs import RunContext
    from harness.plugin.session import HarnessSession

    config = pytester.parseconfigure("--harness-seeds", "3,4", "--harness-max-checks", "2")
    session = HarnessSession.of(config)
    assert type(session) is HarnessSession and get_session(config) is session
    assert isinstance(session, Session) and not isinstance(object(), Session)
    assert (session.seeds, session.max_checks, session.workers) == ([3, 4], 2, 0)
    assert issubclass(RunContext, Run) and not issubclass(HarnessSession, Run)
