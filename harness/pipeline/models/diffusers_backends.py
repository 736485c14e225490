"""diffusers Stable Diffusion pipelines as stage backends: one call shape, local checkpoints only.

``generate: sd``          text-to-image (``StableDiffusionPipeline``) at the vector's size:
                          the size is rounded up to a multiple of 8 for the model and the
                          image resized back (Lanczos).  A vector without a prompt passes
                          its image through (``info.generated = 0``), as ``tiny_diffusion`` does.
``generate: sd_img2img``  image-to-image (``StableDiffusionImg2ImgPipeline``) of the vector's image,
                          ``strength`` of the way from it to noise; runs a text-to-image
                          checkpoint (the built-in tiny ``sd`` one by default); same size
                          rules and prompt-less pass-through as ``sd``.
``inpaint: sd_inpaint``   SD inpainting (``StableDiffusionInpaintPipeline``) of ``ctx.mask >= 0.5``.
                          The model runs on the whole image (rounded to multiples of 8) and
                          its output is composited into the masked pixels only: every other
                          pixel is bit-identical to the input.  No mask: the input, unchanged.
``upscale: sd_upscale``   the SD x4 upscaler layout (``StableDiffusionUpscalePipeline``); the
                          model always makes 4x (input rounded to multiples of 8); for
                          ``scale`` 2 or 3 its 4x output is resized (Lanczos) to ``scale`` x.

Shared parameters (all recorded in the backend config):

``model_path``  a local diffusers checkpoint folder (``model_index.json`` + components).
                Empty: the built-in tiny checkpoint ``variant`` (``a``/``b``) of
                :mod:`harness.pipeline.models.tiny`, saved once under
                ``$HARNESS_MODELS_DIR`` (default ``~/.cache/harness/models``) and loaded by
                the same ``from_pretrained(path, local_files_only=True)`` call.  A Hub id
                or a missing folder is a :class:`ConfigError`: nothing is downloaded
                (``HF_HUB_OFFLINE=1`` is set before diffusers/transformers are imported).
``device``      ``auto`` (cuda if available, else mps if available, else cpu) / cpu / cuda / mps
``dtype``       float32 / float16 / bfloat16
``scheduler``   ``default`` (the checkpoint's own) / ddim / euler / pndm (PLMS: ``skip_prk_steps``,
                as in SD's own config) / dpm (DPM-Solver++ multistep), built with ``from_config``
                of the checkpoint's scheduler config (prediction type and betas carry over)
``steps``, ``guidance`` (classifier-free guidance scale; <= 1 disables it), ``strength``
(img2img, inpaint), ``noise_level`` (upscale), ``prompt`` / ``negative_prompt`` (used when the
vector has none), ``threads`` (0: the suite's ``threads``).

Each pipeline is loaded once per worker process: a module-level cache keyed by
``(kind, resolved path, dtype, device, scheduler)``.  The seed is
``torch.Generator(device).manual_seed(ctx.seed)``.  Latents that turn NaN/inf (e.g. a
float16 overflow) stop the run with a :class:`StageError` saying so and at which step;
NaN/inf or all-black images are refused by :func:`~harness.pipeline.stages.base.validate_output`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError, StageError
from harness.pipeline.stages.base import (
    BackendBase,
    StageContext,
    StageResult,
    binary_mask,
    register,
    spec,
)

__all__ = [
    "DEVICES",
    "DTYPES",
    "PIPELINE_CACHE",
    "SCHEDULERS",
    "SDGenerate",
    "SDImg2Img",
    "SDInpaint",
    "SDUpscale",
    "clear_cache",
    "load_pipeline",
    "resolve_device",
]

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


def resolve_device(device: str) -> str:
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
    from harness.pipeline.models.tiny import UNET_IN_CHANNELS

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
        from harness.pipeline.models.offline import force_offline

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
        PIPELINE_CACHE[key] = pipe
        _RUN_LOCKS[id(pipe)] = threading.Lock()
        return pipe


def _round8(n: int) -> int:
    return max(8, -(-int(n) // 8) * 8)


def _resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    if arr.shape[:2] == (h, w):
        return arr
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.Resampling.LANCZOS))


def _to_uint8(img: Any, label: str) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise StageError(f"{label}: the model produced NaN or inf pixels")
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


class _NaNWatch:
    """Checks the latents after every denoising step; the first NaN/inf stops the run with a clear reason."""

    def __init__(self, label: str, dtype: str) -> None:
        self.label, self.dtype = label, dtype

    def check(self, step: int, latents) -> None:
        import torch

        if not bool(torch.isfinite(latents).all()):
            hint = " (a float16 overflow? try dtype = \"float32\" or \"bfloat16\")" if self.dtype == "float16" else ""
            raise StageError(f"{self.label}: the latents became NaN or inf at denoising step {step + 1}{hint}")

    def on_step_end(self, pipe, step, timestep, kwargs):  # diffusers' callback_on_step_end
        self.check(step, kwargs["latents"])
        return kwargs

    def legacy(self, step, timestep, latents):  # the upscaler's old-style callback(step, t, latents)
        self.check(step, latents)


@dataclass(frozen=True)
class SDParams:
    """What every diffusers backend takes (each adds its own: strength, scale, noise_level)."""

    model_path: str = ""
    variant: str = spec("a", choices=("a", "b"))
    device: str = spec("auto", choices=DEVICES)
    dtype: str = spec("float32", choices=DTYPES)
    scheduler: str = spec("default", choices=SCHEDULERS)
    steps: int = spec(4, 1, 200)
    guidance: float = spec(1.0, 0.0, 30.0)
    prompt: str = ""
    negative_prompt: str = ""
    threads: int = spec(0, 0, 64)


class _SDBackend(BackendBase):
    kind = "sd"

    @property
    def label(self) -> str:
        return f"{self.stage} backend {self.name!r}"

    def __init__(self, params) -> None:
        super().__init__(params)
        self._path: Path | None = None
        strength = getattr(params, "strength", 1.0)
        if int(params.steps * strength) < 1:
            raise ConfigError(f"{self.label}: steps={params.steps} x strength={strength:g} leaves no denoising step; "
                              f"raise steps or strength")
        if params.model_path:  # checked now (no torch import): a bad path is a config error at build time
            self._path = check_checkpoint(self.label, self.kind, params.model_path)

    def checkpoint(self) -> Path:
        """The folder that is loaded: ``model_path``, or the built-in tiny checkpoint (built on first use)."""
        if self._path is None:
            from harness.pipeline.models.tiny import ensure_tiny

            self._path = ensure_tiny(_CHECKPOINT_KIND.get(self.kind, self.kind), self.params.variant).resolve()
        return self._path

    def weight_paths(self) -> list[Path]:
        """The checkpoint folder (hashed into the stage cache key)."""
        return [self.checkpoint()]

    def _pipe_and_generator(self, seed: int):
        import torch

        from harness.pipeline.environment import apply_torch_threads

        p = self.params
        threads = apply_torch_threads(p.threads)
        device = resolve_device(p.device)
        try:
            pipe = load_pipeline(self.kind, self.checkpoint(), p.dtype, device, p.scheduler)
        except ConfigError as exc:
            raise ConfigError(f"{self.label}: {exc}") from exc
        return pipe, torch.Generator(device).manual_seed(int(seed)), threads, device

    def _common(self, ctx: StageContext) -> dict[str, Any]:
        p = self.params
        prompt = ctx.prompt if ctx.prompt is not None else p.prompt
        negative = ctx.negative_prompt if ctx.negative_prompt is not None else p.negative_prompt
        return {"prompt": prompt, "negative_prompt": negative or None, "num_inference_steps": p.steps,
                "guidance_scale": p.guidance, "output_type": "np"}

    def _run(self, ctx: StageContext, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        import torch

        pipe, gen, threads, device = self._pipe_and_generator(ctx.seed)
        watch = _NaNWatch(self.label, self.params.dtype)
        if self.kind == "sd_upscale":
            kwargs.update(callback=watch.legacy, callback_steps=1)
        else:
            kwargs.update(callback_on_step_end=watch.on_step_end, callback_on_step_end_tensor_inputs=["latents"])
        with _RUN_LOCKS[id(pipe)], torch.inference_mode():
            out = pipe(generator=gen, **self._common(ctx), **kwargs)
        img = _to_uint8(out.images[0], self.label)
        return img, {"threads": threads, "device": device}


@register("generate", "sd")
class SDGenerate(_SDBackend):
    kind = "sd"

    @dataclass(frozen=True)
    class Params(SDParams):
        pass

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        if ctx.prompt is None and not self.params.prompt:  # not a prompt vector: pass its image through
            return StageResult(image=image.copy(), info={"generated": 0})
        h, w = image.shape[:2]
        out, info = self._run(ctx, height=_round8(h), width=_round8(w))
        return StageResult(image=_resize(out, w, h), info={"generated": 1, **info})


@register("generate", "sd_img2img")
class SDImg2Img(_SDBackend):
    kind = "sd_img2img"

    @dataclass(frozen=True)
    class Params(SDParams):
        strength: float = spec(0.5, 0.01, 1.0)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        from PIL import Image

        if ctx.prompt is None and not self.params.prompt:  # not a prompt vector: pass its image through
            return StageResult(image=image.copy(), info={"generated": 0})
        h, w = image.shape[:2]
        src = Image.fromarray(_resize(np.ascontiguousarray(image), _round8(w), _round8(h)))
        out, info = self._run(ctx, image=src, strength=self.params.strength)
        return StageResult(image=_resize(out, w, h), info={"generated": 1, **info})


@register("inpaint", "sd_inpaint")
class SDInpaint(_SDBackend):
    kind = "sd_inpaint"

    @dataclass(frozen=True)
    class Params(SDParams):
        strength: float = spec(1.0, 0.01, 1.0)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        from PIL import Image

        m = binary_mask(ctx, image.shape[:2], self.label)
        if not m.any():
            return StageResult(image=image.copy(), info={"filled_px": 0})
        h, w = image.shape[:2]
        h8, w8 = _round8(h), _round8(w)
        src = Image.fromarray(_resize(np.ascontiguousarray(image), w8, h8))
        # the model's mask: nearest-resized, so the hole it sees covers exactly the pixels we keep
        mask = Image.fromarray(m.astype(np.uint8) * 255).resize((w8, h8), Image.Resampling.NEAREST)
        out, info = self._run(ctx, image=src, mask_image=mask, height=h8, width=w8, strength=self.params.strength)
        filled = _resize(out, w, h)
        result = np.where(m[..., None], filled, image).astype(np.uint8)
        return StageResult(image=result, info={"filled_px": int(m.sum()), **info})


@register("upscale", "sd_upscale")
class SDUpscale(_SDBackend):
    kind = "sd_upscale"

    @dataclass(frozen=True)
    class Params(SDParams):
        scale: int = spec(4, 2, 4)
        noise_level: int = spec(20, 0, 350)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        from PIL import Image

        h, w = image.shape[:2]
        src = Image.fromarray(_resize(np.ascontiguousarray(image), _round8(w), _round8(h)))
        out, info = self._run(ctx, image=src, noise_level=self.params.noise_level)
        s = self.params.scale
        return StageResult(image=_resize(out, w * s, h * s), info={"model_scale": 4, **info})
