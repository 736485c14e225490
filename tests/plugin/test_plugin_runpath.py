"""One run path: pytest sessions claim their run folders as `harness run` creates its own --
exclusively, locked, with an early header report -- so two sessions at once never share one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.errors import ConfigError
from harness.naming import RUN_STAMP_FORMAT
from harness.run.rundir import RunFolder
from harness.report.schema import Report, load_report, run_in_progress

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ('vectors = "vectors"\nsuites = "vectors/suites"\nbaselines = "baselines"\nreports = "reports"\n'
           'cache = ".harness-cache"\nsuite = "tiny"\n')
SUITE = '''name = "tiny"
seeds = [1, 2]
vectors = ["microprint_dilation"]

[pipelines.classic]
generate = { backend = "source" }
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
denoise = { backend = "tv", strength = 0.1 }
upscale = { backend = "lanczos", scale = 2 }
'''
S1, S2 = "microprint_dilation/classic/s1", "microprint_dilation/classic/s2"


def write_project(root: Path) -> Path:
    """A harness project whose default suite ``tiny`` is 1 vector x 1 pipeline x 2 seeds."""
    (root / "vectors" / "suites").mkdir(parents=True, exist_ok=True)
    (root / "harness.toml").write_text(PROJECT)
    (root / "vectors" / "suites" / "tiny.toml").write_text(SUITE)
    return root


def header(name: str) -> Report:
    return Report(name, "tiny", "2026-01-01T00:00:00+00:00", {}, planned=["v/p/s1"])


def test_one_session_claims_one_folder_another_session_the_next_name(tmp_path):
    a, created_a = RunFolder.claim(tmp_path, "20260101T000000-tiny", "token-a", header)
    a2, created_a2 = RunFolder.claim(tmp_path, "20260101T000000-tiny", "token-a", header)  # a's xdist worker
    b, created_b = RunFolder.claim(tmp_path, "20260101T000000-tiny", "token-b", header)
    try:
        assert (created_a, created_a2, created_b) == (True, False, True)
        assert a.path == a2.path == tmp_path / "20260101T000000-tiny"
        assert b.path == tmp_path / "20260101T000000-tiny-2"
        assert (a.path / ".lock").read_text() == "token-a 20260101T000000-tiny"
        assert (b.path / ".lock").read_text() == "token-b 20260101T000000-tiny"
        # the header is written once, by the creator: an incomplete run with its planned cases
        early = load_report(a.path)
        assert (early.complete, early.planned, early.cases) == (False, ["v/p/s1"], [])
        assert (a.path / "checks").is_dir() and not (a.path / "checks.csv").exists()  # csv only on request
        assert run_in_progress(a.path) and run_in_progress(b.path)
        with pytest.raises(ConfigError, match="another harness process is still writing this run"):
            RunFolder.reopen(a.path)  # harness run --resume refuses a folder a session holds
    finally:
        for f in (a, a2, b):
            f.close()
    assert not run_in_progress(a.path)  # every holder let go: the kernel dropped the shared locks


def test_a_second_suite_of_one_name_never_joins_the_first(tmp_path):
    """Session a runs two suites named tiny (run ids x-tiny and x-tiny-2); session b took x-tiny first."""
    b, _ = RunFolder.claim(tmp_path, "x-tiny", "token-b", header)
    first, _ = RunFolder.claim(tmp_path, "x-tiny", "token-a", header)
    second, created = RunFolder.claim(tmp_path, "x-tiny-2", "token-a", header)
    for f in (b, first, second):
        f.close()
    assert [f.path.name for f in (b, first, second)] == ["x-tiny", "x-tiny-2", "x-tiny-2-2"] and created


def test_a_session_never_joins_a_folder_of_harness_run(tmp_path):
    run = RunFolder.create(tmp_path, "20260101T000000-tiny")
    try:
        claimed, created = RunFolder.claim(tmp_path, "20260101T000000-tiny", "token-a", header)
        claimed.close()
        assert (created, claimed.path.name) == (True, "20260101T000000-tiny-2")
    finally:
        run.close()


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    from harness.cli import main

    root = write_project(tmp_path_factory.mktemp("baked"))
    assert main(["bake", "--project", str(root)]) == 0
    return root / "baselines"


def test_two_sessions_started_at_once_get_two_folders(tmp_path, baked):
    root = write_project(tmp_path / "project")
    shutil.copytree(baked, root / "baselines")
    # Other runs took every second of the next five minutes: both sessions pick the first free
    # second after them, the same run id, so only claiming the folder keeps them apart.
    now = datetime.now(timezone.utc)
    for i in range(300):
        (root / "reports" / f"{(now + timedelta(seconds=i)).strftime(RUN_STAMP_FORMAT)}-other").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:benchmark"]
    procs = [subprocess.Popen(cmd + extra, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for extra in ([], ["-p", "xdist", "-n", "2"])]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted(p for p in (root / "reports").iterdir() if not p.name.endswith("-other"))
    assert len(runs) == 2, [r.name for r in runs]
    assert runs[1].name == runs[0].name + "-2"  # the same run id, claimed twice
    tokens = {(r / ".lock").read_text() for r in runs}
    assert len(tokens) == 2  # one folder per session, each session's own
    for run in runs:
        report = json.loads((run / "report.json").read_text())
        assert report["complete"] is True and report["planned"] == [S1, S2]
        assert [(c["id"], c["status"]) for c in report["cases"]] == [(S1, "pass"), (S2, "pass")]
        rows = pq.read_metadata(run / "checks.parquet").num_rows  # compacted by the session's owner
        assert rows == sum(c["n_checks"] for c in report["cases"]) > 100
        assert not list((run / "checks").iterdir()) and not run_in_progress(run)


def test_a_run_folder_that_cannot_be_made_fails_each_item_naming_the_path(pytester):
    write_project(pytester.path)
    (pytester.path / "file").write_text("not a folder")
    result = pytester.runpytest("-p", "no:cacheprovider", "--harness-out", str(pytester.path / "file" / "reports"))
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*{pytester.path / 'file' / 'reports'}: cannot create the reports folder here*"])
    assert "Traceback" not in result.stdout.str()
