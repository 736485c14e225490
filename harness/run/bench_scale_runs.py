"""The runs behind ``harness bench --scale``: the real ``harness`` CLI in child processes.

Every figure of :mod:`harness.run.bench_scale` comes from a command a user would type,
started here as a child process in a fresh folder, with the BLAS/OpenMP thread pools
pinned (:data:`THREAD_VARS`) and the child's own peak RSS read from ``os.wait4`` (the
largest single process of its tree: the driver, or a worker it waited for).  A run that is
watched (:func:`launch` with ``watch=True``) also timestamps each ``[k/N]`` progress line
on stderr and samples the driver's RSS (``/proc/<pid>/status``, Linux) at that moment.

Workloads: the built-in ``smoke`` suite (run from an empty folder, so no project is
found), or a project made by ``harness init`` with a 64 x 64 vector of cheap classical
stages (:func:`tiny_project`), baked before it is run so that every case is judged
against a baseline as in a real run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Proc", "Event", "harness_command", "launch", "child_env", "run_flags", "tiny_project", "bake",
           "write_pair", "case_seconds", "THREAD_VARS"]

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")

TINY_VECTOR = """id = "tiny"
description = "harness bench --scale: the example photograph at 64 x 64 with a caption to remove"
tags = ["bench"]
size = [64, 64]

[source]
kind = "file"
path = "assets/example.png"
fit = "resize"

[[overlays]]
kind = "text"
text = "AB"
position = [8, 8]
size = 12
color = [255, 255, 255]
"""

# the cheapest built-in backend of each stage (classical, no model to load)
TINY_SUITE = """name = "{name}"
description = "harness bench --scale: {n} cheap cases (one 64 x 64 vector, classical stages, {n} seeds)"
seeds = {seeds}
vectors = ["tiny"]
mode = "paired"
threads = {threads}

[measure]
tile = 32
ring = 4

[pipelines.cheap]
generate = {{ backend = "source" }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 1 }}
inpaint = {{ backend = "telea", radius = 2 }}
denoise = {{ backend = "tv", strength = 0.1 }}
upscale = {{ backend = "nearest", scale = 2 }}
"""


@dataclass
class Event:
    """One ``[done/total]`` progress line: seconds since the start, and the driver's RSS then (bytes)."""

    t: float
    done: int
    total: int
    rss: int | None


@dataclass
class Proc:
    """A finished child: its exit code, wall seconds (spawn to exit), peak RSS in bytes, output."""

    args: list[str]
    rc: int
    wall_s: float
    maxrss: int
    stdout: str
    stderr: str
    events: list[Event] = field(default_factory=list)

    def failure(self) -> str:
        """One line saying why the child failed: its exit code and last stderr line."""
        tail = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return f"`harness {' '.join(self.args)}` exited {self.rc}: {tail[-1] if tail else '(no output)'}"


def harness_command() -> list[str]:
    """The installed ``harness`` console script beside this interpreter (what a user runs),
    else ``python -m harness.cli`` of this interpreter."""
    script = Path(sys.executable).with_name("harness")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "harness.cli"]


def child_env(threads: int) -> dict[str, str]:
    """This environment with every thread pool pinned to ``threads`` (sized when a library loads)."""
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    env.pop("HARNESS_DEBUG", None)
    return env


def _driver_rss(pid: int) -> int | None:
    """Resident set of process ``pid`` in bytes (Linux ``/proc``), None where unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _drain(stream, sink: list[str]) -> None:
    sink.append(stream.read())


def launch(args: list[str], cwd: Path, env: dict[str, str], *, watch: bool = False, keep_stdout: bool = True,
           timeout: float = 3600.0) -> Proc:
    """Run ``harness ARGS`` in ``cwd`` and wait; ``watch``: timestamp its progress lines (see the module)."""
    cmd = harness_command() + args
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL)
    killer = threading.Timer(timeout, p.kill)  # a hung child must not hang the benchmark
    killer.start()
    out: list[str] = []
    reader = threading.Thread(target=_drain, args=(p.stdout, out), daemon=True) if keep_stdout else None
    if reader:
        reader.start()
    err: list[str] = []
    events: list[Event] = []
    assert p.stderr is not None
    for line in p.stderr:
        m = _PROGRESS.match(line) if watch else None
        if m:
            events.append(Event(time.perf_counter() - t0, int(m[1]), int(m[2]), _driver_rss(p.pid)))
        err.append(line)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    if reader:
        reader.join()
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    maxrss = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    return Proc(args, p.returncode, wall, maxrss, "".join(out), "".join(err), events)


def run_flags(help_text: str, out: Path, cache: Path) -> list[str]:
    """``--out`` and ``--cache`` of one run, and ``--store`` beside them where ``harness run`` has it."""
    flags = ["--out", str(out), "--cache", str(cache)]
    if re.search(r"(^|\s)--store\b", help_text):
        flags += ["--store", str(cache.with_name(cache.name + "-store"))]
    return flags


def tiny_project(root: Path, suites: dict[str, int], threads: int, env: dict[str, str]) -> Path:
    """A project made by ``harness init`` plus the 64 x 64 vector and, per ``{name: cases}``, a suite
    of that many seeds of it; returns the project folder."""
    proc = launch(["init", str(root)], root.parent, env)
    if proc.rc != 0:
        raise RuntimeError(proc.failure())
    (root / "vectors" / "tiny.toml").write_text(TINY_VECTOR, encoding="utf-8")
    for name, n in suites.items():
        text = TINY_SUITE.format(name=name, n=n, seeds=list(range(1, n + 1)), threads=threads)
        (root / "vectors" / "suites" / f"{name}.toml").write_text(text, encoding="utf-8")
    return root


def bake(project: Path, suite: str, env: dict[str, str]) -> None:
    """``harness bake --suite SUITE`` in ``project`` (its cache), so that the benchmark's runs are judged."""
    proc = launch(["bake", "--suite", suite, "--cache", str(project / ".bake-cache")], project, env,
                  keep_stdout=False)
    if proc.rc != 0:
        raise RuntimeError(proc.failure())


def write_pair(folder: Path, size: int) -> tuple[Path, Path]:
    """A ``size`` x ``size`` RGB pair as PNGs: a smooth pattern with seeded texture (baseline) and
    the same with seeded +-1 jitter (candidate, which a compare passes).  Written a band of rows at
    a time, so this process never holds a float copy of the whole image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = np.empty((size, size, 3), np.uint8)
    cand = np.empty_like(base)
    x = np.arange(size, dtype=np.float32)
    wave = np.stack([np.sin(x / 37.0), np.cos(x / 23.0), np.sin(x / 51.0)], axis=-1)  # (W, 3)
    for y0 in range(0, size, 512):
        y = np.arange(y0, min(y0 + 512, size), dtype=np.float32)[:, None, None]
        band = 128 + 50 * wave[None] * np.cos(y / 41.0) + rng.normal(0, 12, (len(y), size, 3)).astype(np.float32)
        b = np.clip(np.rint(band), 0, 255).astype(np.uint8)
        base[y0:y0 + len(y)] = b
        cand[y0:y0 + len(y)] = np.clip(b.astype(np.int16) + rng.integers(-1, 2, b.shape), 0, 255).astype(np.uint8)
    paths = folder / "baseline.png", folder / "candidate.png"
    for arr, path in zip((base, cand), paths):
        Image.fromarray(arr).save(path, compress_level=1)
    return paths


def case_seconds(run_dir: Path) -> tuple[float, int, dict[str, int]]:
    """``(Σ over cases of Σ of the case's recorded timings (s), cases, summary)`` from ``report.json``.

    Read as plain JSON (both schema versions keep ``cases[].timings`` and ``summary``), so that the
    benchmark measures any report the CLI writes."""
    import json

    doc = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    cases = doc.get("cases") or []
    total = sum(float(v) for c in cases for v in (c.get("timings") or {}).values())
    return total, sum(1 for c in cases if c.get("timings")), dict(doc.get("summary") or {})
