"""Environment fingerprint recorded in reports and baselines (versions, device, threads, git sha)."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["fingerprint", "set_threads"]

_PACKAGES = ("harness", "numpy", "scipy", "scikit-image", "pillow", "opencv-python-headless", "onnxruntime",
             "rapidocr", "ncnn", "pypatchmatch", "torch", "diffusers")


def set_threads(n: int) -> None:
    """Pin every library's thread count: it changes the bits of the outputs."""
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass
    import sys

    if "torch" in sys.modules:  # never import torch just to set its threads
        sys.modules["torch"].set_num_threads(n)


@lru_cache(maxsize=8)
def _git_sha(where: Path) -> str | None:
    """The commit of the repository holding ``where`` (the user's project), if any."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=where)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def fingerprint(threads: int, root: Path | None = None) -> dict[str, Any]:
    """Versions, platform, device, threads and the git sha of the project at ``root`` (default: cwd)."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": "cpu",
        "threads": threads,
        "versions": versions,
        "git_sha": _git_sha(Path(root or Path.cwd()).resolve()),
    }
