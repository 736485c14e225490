"""Stage backends that misbehave on purpose, for the run-level fault matrix.

Each is a plain ``f(image, ctx, **params)`` plugged into a suite as
``denoise = { backend = "faults.fault_backends:NAME", ... }``; ``seeds`` limits the fault to
those seeds (empty: every seed), so the other cases of a run show that the run went on.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import time

import numpy as np


def _hit(ctx, seeds) -> bool:
    return not seeds or ctx.seed in seeds


def _ok(image):
    """The image with one bit flipped: a (deterministic) denoise that did something."""
    out = image.copy()
    out[0, 0, 0] ^= 1
    return out


def identity(image, ctx):
    return _ok(image)


def hang(image, ctx, seeds=()):
    """Never returns (on the given seeds)."""
    if _hit(ctx, seeds):
        time.sleep(3600)
    return _ok(image)


def hang_while_file(image, ctx, path="", seeds=()):
    """Blocks while ``path`` exists (and touches ``path``.hanging meanwhile): a run that can be
    interrupted mid-case, then resumed with the same suite once the file is gone."""
    if _hit(ctx, seeds) and path and os.path.exists(path):
        with open(f"{path}.hanging", "w") as fh:
            fh.write(str(os.getpid()))
        while os.path.exists(path):
            time.sleep(0.05)
    return _ok(image)


def segfault(image, ctx, seeds=()):
    """Kills its interpreter with a real segmentation fault."""
    if _hit(ctx, seeds):
        ctypes.string_at(0)
    return _ok(image)


def sigsegv(image, ctx, seeds=()):
    if _hit(ctx, seeds):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _ok(image)


def exit_now(image, ctx, code=3, seeds=()):
    """``os._exit``: the worker vanishes without a word."""
    if _hit(ctx, seeds):
        os._exit(code)
    return _ok(image)


def crash_once(image, ctx, marker="", seeds=()):
    """Segfaults the first time it runs a seed (``marker``.SEED does not exist yet), then works."""
    if _hit(ctx, seeds):
        flag = f"{marker}.{ctx.seed}"
        if not os.path.exists(flag):
            with open(flag, "w") as fh:
                fh.write(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGSEGV)
    return _ok(image)


def nan_output(image, ctx, seeds=()):
    if _hit(ctx, seeds):
        out = image.astype(np.float32) / 255.0
        out[0, 0, 0] = np.nan
        return out
    return _ok(image)


def wrong_shape(image, ctx, seeds=()):
    return image[:-3].copy() if _hit(ctx, seeds) else _ok(image)


def all_black(image, ctx, seeds=()):
    return np.zeros_like(image) if _hit(ctx, seeds) else _ok(image)


def fill(path) -> None:
    """Writes ``path`` until its file system is full (ENOSPC)."""
    chunk = b"\0" * (1 << 16)
    with open(path, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


def fill_disk(image, ctx, path="", seeds=(), after=""):
    """Fills the file system holding ``path`` (see :func:`fill`), then returns normally.  ``after``: a
    glob to wait for first (up to 20 s), e.g. an earlier case's record: the pool starts the next case
    while the runner still records the last one, so "full after case 1" must say so."""
    if _hit(ctx, seeds) and path and not os.path.exists(path):
        import glob
        import time

        deadline = time.monotonic() + 20
        while after and not glob.glob(after) and time.monotonic() < deadline:
            time.sleep(0.02)
        fill(path)
    return _ok(image)


def record_pid(image, ctx, folder="", crash=()):
    """Appends the worker's pid to ``folder/SEED`` (which worker ran which case); segfaults on ``crash`` seeds."""
    with open(os.path.join(folder, str(ctx.seed)), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    if ctx.seed in crash:
        ctypes.string_at(0)
    return _ok(image)
