"""Shared by the tests of `harness bake`'s review and `harness baselines diff`: a small suite measured
once, copies of its run with changed measurements, and the folder and git helpers."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.naming import case_slug
from harness.report.schema import read_case_record

SUITE = '''
name = "rv"
seeds = [1, 2, 3]
vectors = ["caption_portrait"]

[pipelines.p]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''
S1, S2, S3 = (f"caption_portrait/p/s{i}" for i in (1, 2, 3))


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The suite and one run of it (no baselines: every case fails, and is measured)."""
    tmp = tmp_path_factory.mktemp("review")
    suite = tmp / "rv.toml"
    suite.write_text(SUITE)
    with pytest.MonkeyPatch.context() as m:
        m.setattr("harness.run.environment._git_sha", lambda where: "a" * 40)
        assert main(["run", "--suite", str(suite), "--out", str(tmp / "r"), "--cache", str(tmp / "cache"),
                     "--baselines", str(tmp / "none")]) == 1
    return suite, next((tmp / "r").iterdir())


def edited(run: Path, dest: Path, edits: dict) -> Path:
    """A copy of ``run`` whose cases' measurements are changed: ``{case id: {(metric, slice): factor}}``
    (each record rewritten as a version-1 record, the measurement inline)."""
    shutil.copytree(run, dest)
    for cid, factors in edits.items():
        p = dest / "cases" / f"{case_slug(cid)}.json"
        _, m = read_case_record(p)
        for (metric, slice_), factor in factors.items():
            mv = m["metrics"][metric]
            i = mv["slices"].index(slice_)
            mv["values"][i] *= factor
        p.write_text(json.dumps({"case": json.loads(p.read_text())["case"], "measurement": m}))
    return dest


def bake(suite, run, baselines, *extra):
    return main(["bake", "--suite", str(suite), "--from-report", str(run), "--baselines", str(baselines), *extra])


def state(folder: Path) -> dict:
    """Every file's and folder's bytes and mtime under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        out[p.relative_to(folder).as_posix()] = (p.read_bytes() if p.is_file() else None, st.st_mtime_ns)
    return out


def lines_of(out: str, word: str) -> list[str]:
    return [x for x in out.splitlines() if x.startswith(word)]


TINY = {("band_power", "band=low ch=Y"): 1.001}  # far inside the tolerance
BIG = {("band_power", "band=mid ch=Y"): 3.0}  # three times the mid band's energy


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout
