"""The one place that sets every library's thread count (it changes the bits of the outputs).

:func:`set_threads` records the configured count (:func:`configured_threads`) and applies
it to what is loaded: OpenCV, torch and the BLAS/OpenMP environment variables.  Libraries
loaded later take it from here: :func:`cv2_module` (OpenCV, for every backend and
measurement that uses it), :func:`apply_torch_threads` (torch backends call it before
running), the rapidocr onnxruntime session (``intra_op_num_threads``), the ncnn
super-resolution nets (``opt.num_threads``) and the OIDN denoiser's device (``numThreads``).
:func:`threads_applied` reads back what each library runs with, for the run's fingerprint
(:func:`harness.run.environment.fingerprint`).

Ground floor: the stages, models and measurements read it, the run sets it; it imports
nothing of harness.
"""

from __future__ import annotations

import sys

__all__ = ["configured_threads", "set_threads", "apply_torch_threads", "threads_applied", "cv2_module"]

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


_CV2 = None


def cv2_module():
    """Import OpenCV with its thread pool set to the configured count
    (:func:`configured_threads`: the suite's ``threads``, 1 until
    :func:`set_threads` is called).  Only the first call sets
    it; later calls never reset what ``set_threads`` applied."""
    global _CV2
    if _CV2 is None:
        import cv2

        cv2.setNumThreads(configured_threads())
        _CV2 = cv2
    return _CV2
