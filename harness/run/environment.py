"""Environment fingerprint recorded in reports and baselines (versions, device, threads, git sha).

The thread count itself is set in one place, :mod:`harness.threads` (the stages and models
read it from there, below this layer); :func:`fingerprint` records next to ``threads`` what
was applied, read back from the library where it allows it
(:func:`~harness.threads.threads_applied`).

The device is the backend's, not the machine's: :func:`backend_device` asks a backend that
can run elsewhere (a ``run_device(self) -> str`` method: the diffusers backends resolve their
``device`` parameter, ``auto`` included) and takes ``"cpu"`` for every other one.  It goes
into each stage's cache key (:func:`harness.run.identity.stage_identity`) and, over the
run's backends (:func:`stage_devices`), into the fingerprint's ``device``.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from harness.naming import DISTRIBUTION
from harness.threads import apply_torch_threads, threads_applied

__all__ = ["fingerprint", "package_versions", "backend_device", "stage_devices"]

_PACKAGES = ("harness", "numpy", "scipy", "scikit-image", "pillow", "opencv-python-headless", "onnxruntime",
             "rapidocr", "ncnn", "pyoidn", "pypatchmatch", "torch", "diffusers", "transformers")

@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for pkg in _PACKAGES:
        try:
            # harness is published as "image-harness" (the name "harness" on PyPI is another
            # project); it is recorded under "harness", as baselines always have.
            out.append((pkg, metadata.version(DISTRIBUTION if pkg == "harness" else pkg)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(out)


def package_versions() -> dict[str, str]:
    """The installed versions of harness and the libraries its backends use (looked up once per process)."""
    return dict(_versions())


@lru_cache(maxsize=8)
def _git_sha(where: Path) -> str | None:
    """The commit of the repository holding ``where`` (the user's project), if any."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=where)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def backend_device(backend: Any) -> str:
    """The device ``backend`` runs on: its ``run_device()`` when it has one, else ``"cpu"``."""
    run_device = getattr(backend, "run_device", None)
    return str(run_device()) if callable(run_device) else "cpu"


def stage_devices(cases: Iterable[Any]) -> list[str]:
    """The devices the stages of ``cases`` (:class:`~harness.suite.suites.Case`) run on, sorted.

    Only a backend whose class can say where it runs (``run_device``) is built, once per distinct
    stage config; the others run on the CPU.  One that cannot be built (or resolved) is left out
    here: its case reports why."""
    from harness.stages.base import build_backend, resolve_backend

    seen: set[str] = set()
    devices: set[str] = set()
    for case in cases:
        for spec in case.pipeline.stages:
            key = json.dumps([spec.stage, spec.backend, dict(spec.params)], sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            try:
                if not hasattr(resolve_backend(spec.stage, spec.backend)[1], "run_device"):
                    devices.add("cpu")
                    continue
                devices.add(backend_device(build_backend(spec.stage, spec.backend, dict(spec.params))))
            except Exception:  # noqa: BLE001 - a probe: the case itself reports a bad backend
                continue
    if "torch" in sys.modules:  # resolving a device may have imported torch: it runs with the configured count
        apply_torch_threads()
    return sorted(devices)


def fingerprint(threads: int, root: Path | None = None, devices: Iterable[str] | None = None) -> dict[str, Any]:
    """Versions, platform, device, threads (configured and applied) and the git sha of the project at
    ``root`` (default: cwd).  ``device``: the ``devices`` the run's backends run on
    (:func:`stage_devices`), joined with "+" ("cpu", "cuda", "cpu+cuda"); "cpu" when not given."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": "+".join(sorted(set(devices or ()))) or "cpu",
        "threads": threads,
        "threads_applied": threads_applied(),
        "versions": package_versions(),
        "git_sha": _git_sha(Path(root or Path.cwd()).resolve()),
    }
