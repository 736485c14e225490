"""The fault matrix under pytest: suite items run in the isolating worker pool of `harness run`, so
a hanging backend is an error item after the suite's ``timeout_s`` and a segfaulting one fails its
own item only, and the session goes on (plain and under xdist).

One tiny project, baked once: a suite whose pipeline ``ok`` behaves, ``hang`` never returns on
seed 2 and ``crash`` segfaults (SIGSEGV) on seed 2; every other case has a baseline and passes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import TESTS

ROOT = TESTS.parent
TIMEOUT_S = 4  # the suite's timeout_s: above a case's cold start in a fresh worker on a busy machine
SUITE = f'''name = "faulty"
seeds = [1, 2]
vectors = ["microprint_dilation"]
timeout_s = {TIMEOUT_S}
''' + "".join(f'''
[pipelines.{name}]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "faults.fault_backends:{backend}"{params} }}
''' for name, backend, params in [("ok", "identity", ""), ("hang", "hang", ", seeds = [2]"),
                                   ("crash", "sigsegv", ", seeds = [2]")])
PROJECT = ('vectors = "vectors"\nsuites = "vectors/suites"\nbaselines = "baselines"\nreports = "reports"\n'
           'cache = ".harness-cache"\nsuite = "faulty"\n')
HANG, CRASH = "microprint_dilation/hang/s2", "microprint_dilation/crash/s2"


def _env() -> dict[str, str]:
    # tests/ for the fault backends, this checkout for harness (also in the workers)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _pytest(root: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", *args],
                          cwd=root, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faulty")
    (root / "vectors" / "suites").mkdir(parents=True)
    (root / "harness.toml").write_text(PROJECT)
    (root / "vectors" / "suites" / "faulty.toml").write_text(SUITE)
    bake = subprocess.run([sys.executable, "-m", "harness.cli", "bake", "--project", str(root), "-k", "ok or s1"],
                          cwd=root, env=_env(), capture_output=True, text=True, timeout=180, check=False)
    assert bake.returncode == 0, bake.stdout + bake.stderr
    return root


@pytest.fixture(scope="module", params=["plain", "xdist"])
def session(request, project):
    """One pytest session over the suite, its output, wall time and report.json."""
    out = project / f"reports-{request.param}"
    args = ["--harness-out", str(out), "-rf"] + (["-p", "xdist", "-n", "2"] if request.param == "xdist" else [])
    t = time.monotonic()
    res = _pytest(project, *args)
    took = time.monotonic() - t
    [run] = out.iterdir()
    return res, took, json.loads((run / "report.json").read_text()), run


def _statuses(report) -> dict[str, str]:
    return {c["id"]: c["status"] for c in report["cases"]}


def test_a_hanging_backend_is_an_error_item_after_the_suites_timeout(session):
    res, took, report, _ = session
    assert res.returncode == 1, res.stdout + res.stderr
    assert "2 failed, 4 passed" in res.stdout.splitlines()[-1]
    hang = next(c for c in report["cases"] if c["id"] == HANG)
    assert hang["error"] == (f"timed out after {TIMEOUT_S} s in stage denoise (backend "
                             "'faults.fault_backends:hang'); its worker was killed")
    assert f"harness case {HANG}: error" in res.stdout
    assert report["environment"]["timeout_s"] == TIMEOUT_S
    assert took < 120  # not the backend's hour


def test_a_segfaulting_backend_fails_only_its_item(session):
    res, _, report, run = session
    crash = next(c for c in report["cases"] if c["id"] == CRASH)
    assert crash["error"] == ("worker killed by SIGSEGV in stage denoise (backend 'faults.fault_backends:sigsegv'); "
                              "retried once in a fresh worker: worker killed by SIGSEGV again")
    failed = sorted(line.split("::")[-1].split(" ")[0] for line in res.stdout.splitlines()
                    if line.startswith("FAILED "))
    assert failed == [CRASH, HANG]  # the short summary (-rf): every other item passed
    assert _statuses(report) == {f"microprint_dilation/{p}/s{s}": ("error" if (p, s) != ("ok", 2) and s == 2
                                                                   else "pass")
                                 for p in ("ok", "hang", "crash") for s in (1, 2)}
    assert report["complete"] is True and report["planned"] == [c["id"] for c in report["cases"]]
    import pyarrow.parquet as pq

    assert pq.read_metadata(run / "checks.parquet").num_rows == sum(c["n_checks"] for c in report["cases"])
