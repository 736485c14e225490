"""Loading diffusers Stable Diffusion pipelines for the backends of
:mod:`harness.models.diffusers_backends`: local checkpoints only, once per process.

:func:`check_checkpoint` checks a user's ``model_path`` (no torch import); :func:`load_pipeline`
loads ``<Pipeline>.from_pretrained(path, local_files_only=True)`` once per process per
``(kind, resolved path, dtype, device, scheduler)`` and makes its UNet and VAE batch-invariant
(:func:`harness.models.invariance.make_batch_invariant`); ``_RUN_LOCKS`` holds one
lock per loaded pipeline (its scheduler keeps per-call state).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = ["DEVICES", "DTYPES", "PIPELINE_CACHE", "SCHEDULERS", "check_checkpoint", "clear_cache", "load_pipeline",
           "resolve_device"]

SCHEDULERS = ("default", "ddim", "euler", "pndm", "dpm")
_SCHEDULER_CLASSES = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler", "pndm": "PNDMScheduler",
                      "dpm": "DPMSolverMultistepScheduler"}
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")
_PIPELINE_CLASSES = {"sd": "StableDiffusionPipeline", "sd_img2img": "StableDiffusionImg2ImgPipeline",
                     "sd_inpaint": "StableDiffusionInpaintPipeline", "sd_upscale": "StableDiffusionUpscalePipeline"}
_CHECKPOINT_KIND = {"sd_img2img": "sd"}  # img2img runs a text-to-image checkpoint

PIPELINE_CACHE: dict[tuple[str, str, str, str, str], Any] = {}
_CACHE_LOCK = threading.Lock()
_RUN_LOCKS: dict[int, threading.Lock] = {}  # one per loaded pipeline: its scheduler keeps per-call state


def clear_cache() -> None:
    with _CACHE_LOCK:
        PIPELINE_CACHE.clear()
        _RUN_LOCKS.clear()


_AUTO: dict[str, str] = {}  # "auto" as this process resolved it, or as the run's driver told it (adopt_auto_device)


def adopt_auto_device(device: str | None) -> None:
    """What ``"auto"`` means in this worker, as the run's driver resolved it on this machine: a
    worker then need not import torch (about 2 s) only to learn the device of a stage it serves
    from the cache.  Local workers only: a Ray node may have other devices than its driver."""
    if device in ("cpu", "cuda", "mps"):
        _AUTO["auto"] = device


def auto_device_known() -> str | None:
    """``"auto"`` for the workers of a run planned in this process: adopted, or resolved by torch when
    planning imported it already (None: nothing here needed torch, so no worker will either)."""
    import sys

    if "auto" in _AUTO or "torch" in sys.modules:
        return resolve_device("auto")  # the adopted answer, else torch's
    return "cpu" if _cpu_build_of_torch() else None


def _cpu_build_of_torch() -> bool:
    """True when the installed torch is built for neither CUDA nor ROCm and this is not a Mac (MPS):
    then "auto" can only be "cpu", read from ``torch/version.py`` without importing torch (about
    1 s).  Once torch is imported, it is asked instead (what it sees is the truth, and tests change it)."""
    import importlib.util
    import platform
    import re
    import sys

    if "torch" in sys.modules or platform.system() == "Darwin":
        return False
    try:
        spec = importlib.util.find_spec("torch")
        roots = list(spec.submodule_search_locations or ()) if spec is not None else []
        text = (Path(roots[0]) / "version.py").read_text(encoding="utf-8") if roots else ""
    except (OSError, ImportError, ValueError):
        return False
    built = dict(re.findall(r"^(cuda|hip)(?:: Optional\[str\])? = (.+)$", text, re.M))
    return built.get("cuda") == "None" and built.get("hip") == "None"


def resolve_device(device: str) -> str:
    if device == "auto" and "auto" in _AUTO:
        return _AUTO["auto"]
    if device == "auto" and _cpu_build_of_torch():
        return "cpu"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA device")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' was asked for but torch sees no MPS device")
    return device


def check_checkpoint(label: str, kind: str, model_path: str) -> Path:
    """A user's ``model_path``: an existing diffusers folder whose UNet fits ``kind``.  No torch import."""
    from harness.models.tiny import UNET_IN_CHANNELS

    p = Path(model_path).expanduser()
    if not p.is_dir():
        hub = "/" in model_path and not p.is_absolute() and not model_path.startswith((".", "~")) \
            and model_path.count("/") == 1
        why = (" (it looks like a Hugging Face Hub id: nothing is downloaded; download the checkpoint yourself "
               "and give its folder)") if hub else ""
        raise ConfigError(f"{label}: model_path {model_path!r} is not an existing local folder{why}; a diffusers "
                          f"checkpoint folder with model_index.json is needed")
    if not (p / "model_index.json").is_file():
        raise ConfigError(f"{label}: model_path {model_path!r} has no model_index.json: not a diffusers checkpoint "
                          f"folder (save one with pipeline.save_pretrained)")
    try:
        unet_in = json.loads((p / "unet" / "config.json").read_text()).get("in_channels")
    except (OSError, ValueError):
        unet_in = None
    want = UNET_IN_CHANNELS[_CHECKPOINT_KIND.get(kind, kind)]
    if unet_in is not None and unet_in != want:
        raise ConfigError(f"{label}: model_path {model_path!r} has a UNet with {unet_in} input channels; a "
                          f"{_PIPELINE_CLASSES[kind]} checkpoint has {want}")
    return p.resolve()


def load_pipeline(kind: str, path: Path, dtype: str, device: str, scheduler: str):
    """``<Pipeline>.from_pretrained(path, local_files_only=True)``, once per process per key."""
    key = (kind, str(path), dtype, device, scheduler)
    with _CACHE_LOCK:
        hit = PIPELINE_CACHE.get(key)
        if hit is not None:
            return hit
        from harness.models.offline import force_offline

        force_offline()
        import diffusers
        import torch
        from diffusers.utils import logging as dlog

        dlog.disable_progress_bar()
        try:
            from transformers.utils import logging as tlog

            tlog.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass
        cls = getattr(diffusers, _PIPELINE_CLASSES[kind])
        try:
            pipe = cls.from_pretrained(str(path), local_files_only=True, dtype=getattr(torch, dtype),
                                       low_cpu_mem_usage=False)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"cannot load {_PIPELINE_CLASSES[kind]} from {str(path)!r}: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
        if scheduler != "default":
            extra = {"skip_prk_steps": True} if scheduler == "pndm" else {}  # as SD's own PNDM config (PLMS only)
            pipe.scheduler = getattr(diffusers, _SCHEDULER_CLASSES[scheduler]).from_config(pipe.scheduler.config,
                                                                                           **extra)
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        from harness.models.invariance import make_batch_invariant

        make_batch_invariant(pipe)
        PIPELINE_CACHE[key] = pipe
        _RUN_LOCKS[id(pipe)] = threading.Lock()
        return pipe
