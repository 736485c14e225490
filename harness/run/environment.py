"""Environment fingerprint recorded in reports and baselines (versions, device, threads, git sha),
and the one place that sets every library's thread count.

:func:`set_threads` records the configured count (:func:`configured_threads`) and applies
it to what is loaded: OpenCV, torch and the BLAS/OpenMP environment variables.  Libraries
loaded later take it from here: :func:`~harness.stages.base.cv2_module` (OpenCV),
:func:`apply_torch_threads` (torch backends call it before running), the rapidocr
onnxruntime session (``intra_op_num_threads``), the ncnn super-resolution nets
(``opt.num_threads``) and the OIDN denoiser's device (``numThreads``).  :func:`fingerprint`
records next to ``threads`` what was applied,
read back from the library where it allows it (``threads_applied``).

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

__all__ = ["fingerprint", "set_threads", "configured_threads", "apply_torch_threads", "package_versions",
           "threads_applied", "backend_device", "stage_devices"]

_PACKAGES = ("harness", "numpy", "scipy", "scikit-image", "pillow", "opencv-python-headless", "onnxruntime",
             "rapidocr", "ncnn", "pyoidn", "pypatchmatch", "torch", "diffusers", "transformers")

_THREADS: int | None = None  # set by set_threads(); 1 until then (the bit-reproducible default)


def configured_threads() -> int:
    """The thread count every library runs with: the last :func:`set_threads` value, else 1."""
    return _THREADS if _THREADS is not None else 1


def set_threads(n: int) -> None:
    """Pin every library's thread count to ``n`` (it changes the bits of the outputs) and record it."""
    import os

    global _THREADS
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _THREADS = n
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass
    if "torch" in sys.modules:  # never import torch just to set its threads: apply_torch_threads does it later
        sys.modules["torch"].set_num_threads(n)


def apply_torch_threads(override: int | None = None) -> int:
    """Set torch's intra-op thread count to ``override`` or else the configured count; returns it.

    Torch backends call this right before they run, so a torch imported after
    :func:`set_threads` still runs with the configured count."""
    import torch

    n = int(override) if override else configured_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def threads_applied() -> dict[str, int]:
    """Each library's thread count, read back where the library allows it.

    OpenCV and torch are read back when loaded (a library not loaded yet gets the
    configured count when it is); onnxruntime sessions and ncnn nets are built with
    the configured count (they cannot be asked without building one)."""
    n = configured_threads()
    out: dict[str, int] = {}
    cv2 = sys.modules.get("cv2")
    out["opencv"] = int(cv2.getNumThreads()) if cv2 is not None and hasattr(cv2, "getNumThreads") else n
    torch = sys.modules.get("torch")
    out["torch"] = int(torch.get_num_threads()) if torch is not None and hasattr(torch, "get_num_threads") else n
    out["onnxruntime"] = n
    out["ncnn"] = n
    return out


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for pkg in _PACKAGES:
        try:
            out.append((pkg, metadata.version(pkg)))
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
