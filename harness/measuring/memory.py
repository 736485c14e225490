"""How much memory one ``harness compare`` of a large pair takes: :func:`peak_compare_rss`.

The figure is the peak resident set size of a child process that runs ``harness compare
--json`` on a synthetic ``size x size`` RGB pair (PNG files in a temporary folder), read
with ``os.wait4`` for that child alone, and the same peak in *copies*: bytes over one
float32 RGB copy of the image (``size² x 3 x 4``; 432 MB at 6000²).  The count includes
everything the child holds: the interpreter and its libraries (~0.2 GB), the two decoded
8-bit images (half a copy), the measurement of each image in turn, the checks and the JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["peak_compare_rss", "synthetic_pair", "float32_copy_bytes"]


def float32_copy_bytes(size: int) -> int:
    """Bytes of one float32 RGB ``size x size`` image: the unit of the copy count."""
    return size * size * 3 * 4


def synthetic_pair(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic ``(size, size, 3)`` uint8 pair: a textured baseline (ramps, two gratings,
    uniform noise) and a candidate that differs slightly (+2 code values in one quarter, new noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(size, dtype=np.float32)[:, None]
    x = np.arange(size, dtype=np.float32)[None, :]
    base = 96.0 + 48.0 * np.sin(x * np.float32(0.05)) * np.cos(y * np.float32(0.031)) + (x + y) * np.float32(48.0 / size)
    out = []
    for k in range(2):
        img = np.empty((size, size, 3), np.uint8)
        for c in range(3):
            plane = base + np.float32(8.0 * c) + rng.integers(-6, 7, (size, size)).astype(np.float32)
            if k == 1:
                plane[: size // 2, : size // 2] += 2.0
            np.clip(plane, 0, 255, out=plane)
            img[..., c] = plane
        out.append(img)
    return out[0], out[1]


def peak_compare_rss(size: int, *, timeout: float = 900.0) -> tuple[int, float]:
    """Peak RSS in bytes of one ``harness compare --json`` of a synthetic ``size``² pair, run in a
    child process, and that peak in float32 image copies (:func:`float32_copy_bytes`).

    Raises ``RuntimeError`` when the child fails (its exit code is not 0 or 1, or it times out).
    """
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="harness-mem-") as tmp:
        paths = []
        for name, img in zip(("baseline.png", "candidate.png"), synthetic_pair(size)):
            path = Path(tmp) / name
            Image.fromarray(img).save(path, compress_level=1)
            paths.append(str(path))
            del img
        cmd = [sys.executable, "-m", "harness.cli", "compare", *paths, "--json", "--quiet", "--max-pixels", "0"]
        err_path = Path(tmp) / "stderr.txt"
        with open(err_path, "wb") as err:  # a file, not a pipe: a chatty child cannot block on it
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            status, usage = _wait(proc, timeout)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            lines = err_path.read_text(errors="replace").strip().splitlines() or ["?"]
            raise RuntimeError(f"harness compare of a {size}x{size} pair exited {code}: {lines[-1]}")
    peak = int(usage.ru_maxrss) * 1024  # kilobytes on Linux
    return peak, peak / float32_copy_bytes(size)


def _wait(proc: subprocess.Popen, timeout: float):
    """``os.wait4`` for ``proc`` (its own rusage, not the largest of all children's), within ``timeout``
    seconds (then the child is killed and ``RuntimeError`` raised): ``(status, rusage)``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
            return status, usage
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"harness compare did not finish within {timeout:.0f} s")
        time.sleep(0.05)
