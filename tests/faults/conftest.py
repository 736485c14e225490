"""Fixtures of the fault matrix (helpers are in faultkit.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from faultkit import TESTS, backend, write_suite


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """A suite whose denoise is `hang_while_file` (hangs on seed 3 while a flag file exists),
    baked: (folder, suite file, baselines folder, flag path)."""
    folder = tmp_path_factory.mktemp("baked")
    flag = folder / "hang-flag"
    suite = write_suite(folder, backend("hang_while_file", path=str(flag), seeds=(3,)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-m", "harness.cli", "bake", "--suite", str(suite), "--baselines",
                          str(folder / "baselines")], cwd=folder, env=env, capture_output=True, text=True, timeout=90,
                         check=False)
    assert res.returncode == 0, res.stderr
    return folder, suite, folder / "baselines", flag
