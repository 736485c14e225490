"""Helpers for the run-level fault matrix: a tiny suite, `harness run` in a subprocess, process lookups.

Imported by the tests here as ``faultkit`` (pytest puts this folder on sys.path); backends are
``faults.fault_backends:NAME`` (``tests/`` is on sys.path, and on PYTHONPATH for subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SUITE = '''
name = "faults"
seeds = {seeds}
vectors = ["microprint_dilation"]
{extra}
[pipelines.p]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {denoise}
upscale = {{ backend = "lanczos", scale = 2 }}
'''


def write_suite(folder: Path, denoise: str = '{ backend = "tv" }', seeds=(1, 2, 3), extra: str = "",
                name: str = "faults.toml") -> Path:
    p = folder / name
    p.write_text(SUITE.format(seeds=list(seeds), denoise=denoise, extra=extra))
    return p


def backend(name: str, **params) -> str:
    """``{ backend = "faults.fault_backends:NAME", k = v }`` for a suite's denoise line."""
    import json

    extra = "".join(f", {k} = {json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in params.items())
    return f'{{ backend = "faults.fault_backends:{name}"{extra} }}'


class Harness:
    """``harness run ...`` in a subprocess, in its own session (so a group signal is a Ctrl-C), whose
    processes (the run, its fork server, its workers) carry a unique marker in their environment."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.mark = uuid.uuid4().hex
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               "HARNESS_FAULT_MARK": self.mark}
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", *args], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def check_running(self) -> None:
        """Fail with the run's output if it ended before the test expected it to."""
        if self.proc.poll() is not None:
            out, err = self.proc.communicate()
            raise AssertionError(f"harness run ended early with exit {self.proc.returncode}:\n{out}\n{err}")

    def marked(self) -> list[int]:
        return marked_pids(self.mark)

    def workers(self) -> list[int]:
        return [p for p in self.marked() if comm(p) == "harness-worker"]


def run_cli(args: list[str], cwd: Path, timeout: float = 90) -> tuple[int, str, str]:
    return Harness(args, cwd).wait(timeout)


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def marked_pids(mark: str) -> list[int]:
    """Live processes whose environment carries ``HARNESS_FAULT_MARK=mark`` (zombies excluded)."""
    needle = f"HARNESS_FAULT_MARK={mark}".encode()
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if needle not in Path(f"/proc/{d}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(int(d))
    return out


def wait_for(predicate, timeout: float, what: str, step: float = 0.05, run: Harness | None = None):
    """``predicate()`` once it is truthy; fails after ``timeout`` s, or as soon as ``run`` has ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if run is not None:
            run.check_running()
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_folder(out: Path, run: Harness | None = None) -> Path:
    """The one run folder under ``out`` (once it exists)."""
    return wait_for(lambda: next((p for p in out.iterdir() if p.is_dir()), None) if out.is_dir() else None,
                    30, f"a run folder in {out}", run=run)


def case_files(run_dir: Path) -> set[str]:
    return {p.name[:-5] for p in (run_dir / "cases").glob("*.json")}


def parquet_cases(run_dir: Path) -> set[str]:
    """The cases with checks in the run's checks.parquet (and parts not yet compacted)."""
    from harness.report.checks_table import read_checks

    return {cid.replace("/", "__") for cid in read_checks(run_dir, ["case"]).column("case").to_pylist()}


def assert_consistent(run_dir: Path) -> dict:
    """report.json, cases/ and checks.parquet hold the same cases (checks.parquet: those with checks)."""
    import json

    doc = json.loads((run_dir / "report.json").read_text())
    ids = {c["id"].replace("/", "__") for c in doc["cases"]}
    assert ids == case_files(run_dir), (ids, case_files(run_dir))
    with_checks = {c["id"].replace("/", "__") for c in doc["cases"] if c["checks"]}
    assert parquet_cases(run_dir) == with_checks
    assert not list(run_dir.glob("**/*.tmp"))
    return doc
