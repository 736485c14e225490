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
                :mod:`harness.models.tiny`, saved once under
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

Each pipeline is loaded once per worker process (:mod:`~harness.models.diffusers_loading`:
a cache keyed by ``(kind, resolved path, dtype, device, scheduler)``).  The seed is
``torch.Generator(device).manual_seed(ctx.seed)``.  Latents that turn NaN/inf (e.g. a
float16 overflow) stop the run with a :class:`StageError` saying so and at which step;
NaN/inf or all-black images are refused by :func:`~harness.stages.base.validate_output`.

**Batches.**  Every backend here has ``call_batch(images, ctxs)`` (the protocol of
:mod:`harness.stages.base`), and ``backend(image, ctx)`` *is* a batch of one: each
seed's result is bit-identical whether it ran alone or with others (one generator per
seed, prompt embeddings encoded at batch 1, batch-invariant modules:
:mod:`~harness.models.invariance`).  A batch stops at the first sample's NaN/inf,
naming its seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.models.diffusers_loading import (
    _CHECKPOINT_KIND,
    _RUN_LOCKS,
    DEVICES,
    DTYPES,
    PIPELINE_CACHE,
    SCHEDULERS,
    check_checkpoint,
    clear_cache,
    load_pipeline,
    resolve_device,
)
from harness.models.diffusers_io import _round8, _resize, _model_input, _to_uint8, _which, _NaNWatch, _Job
from harness.stages.base import (
    BackendBase,
    StageContext,
    StageResult,
    binary_mask,
    register,
    spec,
)
from harness.stages.paths import path_field

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


@dataclass(frozen=True)
class SDParams:
    """What every diffusers backend takes (each adds its own: strength, scale, noise_level)."""

    model_path: str = path_field()  # "": the built-in tiny checkpoint of `variant`
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
    """One code path for one sample and for many: ``__call__`` is :meth:`call_batch` of one.

    A batch renders each sample's prompt embeddings at batch 1 (the same call the pipeline
    makes for one sample) and stacks them, passes one ``torch.Generator`` per sample and the
    per-sample images as lists, so every generator draws what it draws alone, in the same
    order; the pipeline's modules are batch-invariant
    (:mod:`harness.models.invariance`), so each sample's bits equal its one-by-one run.
    """

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
            from harness.models.tiny import ensure_tiny

            self._path = ensure_tiny(_CHECKPOINT_KIND.get(self.kind, self.kind), self.params.variant).resolve()
        return self._path

    def weight_paths(self) -> list[Path]:
        """The checkpoint folder (hashed into the stage cache key)."""
        return [self.checkpoint()]

    def run_device(self) -> str:
        """The device it runs on, ``auto`` resolved (hashed into the stage cache key)."""
        return resolve_device(self.params.device)

    def pipeline(self):
        """``(pipe, threads, device)``: the loaded (cached) pipeline, torch's threads applied."""
        from harness.threads import apply_torch_threads

        p = self.params
        threads = apply_torch_threads(p.threads)
        device = resolve_device(p.device)
        try:
            pipe = load_pipeline(self.kind, self.checkpoint(), p.dtype, device, p.scheduler)
        except ConfigError as exc:
            raise ConfigError(f"{self.label}: {exc}") from exc
        return pipe, threads, device

    # --- what each backend defines
    def _prepare(self, image: np.ndarray, ctx: StageContext) -> _Job | StageResult:
        raise NotImplementedError

    def _finish(self, job: _Job, out: np.ndarray, info: dict[str, Any]) -> StageResult:
        raise NotImplementedError

    def _call_kwargs(self, shape: tuple) -> dict[str, Any]:
        return {}

    # --- the one path
    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        return self.call_batch([image], [ctx])[0]

    def call_batch(self, images: Sequence[np.ndarray], ctxs: Sequence[StageContext]) -> list[StageResult]:
        """One result per ``(image, ctx)``, bit-identical to calling the backend on each alone.

        Samples that need no model (no prompt, no mask) are answered directly; the others run
        in one pipeline call per model input size."""
        if len(images) != len(ctxs):
            raise ValueError(f"{self.label}: {len(images)} images for {len(ctxs)} contexts")
        results: list[StageResult | None] = [None] * len(images)
        groups: dict[tuple, list[tuple[int, _Job]]] = {}
        for i, (image, ctx) in enumerate(zip(images, ctxs)):
            prep = self._prepare(image, ctx)
            if isinstance(prep, StageResult):
                results[i] = prep
            else:
                groups.setdefault(prep.shape, []).append((i, prep))
        for shape, members in groups.items():
            outs, info = self._run([job for _, job in members], shape)
            for (i, job), out in zip(members, outs):
                results[i] = self._finish(job, out, info)
        return results  # type: ignore[return-value]

    def _embeddings(self, pipe, device: str, jobs: Sequence[_Job]) -> dict[str, Any]:
        """Each sample's prompt (and, with guidance, negative) embeddings, encoded at batch 1 as the
        pipeline encodes one sample's, then stacked."""
        import torch

        p = self.params
        cfg = p.guidance > 1.0 and (self.kind == "sd_upscale"
                                    or getattr(pipe.unet.config, "time_cond_proj_dim", None) is None)
        memo: dict[tuple[str, str | None], tuple[Any, Any]] = {}
        pos, neg = [], []
        for job in jobs:
            prompt = job.ctx.prompt if job.ctx.prompt is not None else p.prompt
            negative = (job.ctx.negative_prompt if job.ctx.negative_prompt is not None else p.negative_prompt) or None
            if (prompt, negative) not in memo:
                memo[prompt, negative] = pipe.encode_prompt(prompt, device, 1, cfg, negative)
            pe, ne = memo[prompt, negative]
            pos.append(pe)
            neg.append(ne)
        out = {"prompt_embeds": torch.cat(pos)}
        if cfg:
            out["negative_prompt_embeds"] = torch.cat(neg)
        return out

    def _run(self, jobs: Sequence[_Job], shape: tuple) -> tuple[list[np.ndarray], dict[str, Any]]:
        import torch

        p = self.params
        pipe, threads, device = self.pipeline()
        seeds = [int(job.ctx.seed) for job in jobs]
        watch = _NaNWatch(self.label, p.dtype, seeds)
        kwargs: dict[str, Any] = {"num_inference_steps": p.steps, "guidance_scale": p.guidance, "output_type": "np",
                                  "generator": [torch.Generator(device).manual_seed(s) for s in seeds],
                                  **self._call_kwargs(shape)}
        for name in jobs[0].inputs:
            kwargs[name] = [job.inputs[name] for job in jobs]
        if self.kind == "sd_upscale":
            kwargs.update(callback=watch.legacy, callback_steps=1)
        else:
            kwargs.update(callback_on_step_end=watch.on_step_end, callback_on_step_end_tensor_inputs=["latents"])
        with _RUN_LOCKS[id(pipe)], torch.inference_mode():
            kwargs.update(self._embeddings(pipe, device, jobs))
            out = pipe(**kwargs)
        imgs = [_to_uint8(img, self.label, _which(seeds, [k])) for k, img in enumerate(out.images)]
        return imgs, {"threads": threads, "device": device}


class _Generates(_SDBackend):
    """Shared by ``sd`` and ``sd_img2img``: a vector without a prompt passes its image through."""

    def _finish(self, job: _Job, out: np.ndarray, info: dict[str, Any]) -> StageResult:
        h, w = job.size
        return StageResult(image=_resize(out, w, h), info={"generated": 1, **info})

    def _no_prompt(self, image: np.ndarray, ctx: StageContext) -> StageResult | None:
        if ctx.prompt is None and not self.params.prompt:
            return StageResult(image=image.copy(), info={"generated": 0})
        return None


@register("generate", "sd")
class SDGenerate(_Generates):
    kind = "sd"

    @dataclass(frozen=True)
    class Params(SDParams):
        pass

    def _prepare(self, image: np.ndarray, ctx: StageContext) -> _Job | StageResult:
        h, w = image.shape[:2]
        return self._no_prompt(image, ctx) or _Job(ctx, (h, w), (_round8(h), _round8(w)))

    def _call_kwargs(self, shape: tuple) -> dict[str, Any]:
        return {"height": shape[0], "width": shape[1]}


@register("generate", "sd_img2img")
class SDImg2Img(_Generates):
    kind = "sd_img2img"

    @dataclass(frozen=True)
    class Params(SDParams):
        strength: float = spec(0.5, 0.01, 1.0)

    def _prepare(self, image: np.ndarray, ctx: StageContext) -> _Job | StageResult:
        passed = self._no_prompt(image, ctx)
        if passed is not None:
            return passed
        size, size8, src = _model_input(image)
        return _Job(ctx, size, size8, {"image": src})

    def _call_kwargs(self, shape: tuple) -> dict[str, Any]:
        return {"strength": self.params.strength}


@register("inpaint", "sd_inpaint")
class SDInpaint(_SDBackend):
    kind = "sd_inpaint"

    @dataclass(frozen=True)
    class Params(SDParams):
        strength: float = spec(1.0, 0.01, 1.0)

    def _prepare(self, image: np.ndarray, ctx: StageContext) -> _Job | StageResult:
        from PIL import Image

        m = binary_mask(ctx, image.shape[:2], self.label)
        if not m.any():
            return StageResult(image=image.copy(), info={"filled_px": 0})
        size, (h8, w8), src = _model_input(image)
        # the model's mask: nearest-resized, so the hole it sees covers exactly the pixels we keep
        mask = Image.fromarray(m.astype(np.uint8) * 255).resize((w8, h8), Image.Resampling.NEAREST)
        return _Job(ctx, size, (h8, w8), {"image": src, "mask_image": mask}, extra=(image, m))

    def _call_kwargs(self, shape: tuple) -> dict[str, Any]:
        return {"height": shape[0], "width": shape[1], "strength": self.params.strength}

    def _finish(self, job: _Job, out: np.ndarray, info: dict[str, Any]) -> StageResult:
        image, m = job.extra
        h, w = job.size
        result = np.where(m[..., None], _resize(out, w, h), image).astype(np.uint8)
        return StageResult(image=result, info={"filled_px": int(m.sum()), **info})


@register("upscale", "sd_upscale")
class SDUpscale(_SDBackend):
    kind = "sd_upscale"

    @dataclass(frozen=True)
    class Params(SDParams):
        scale: int = spec(4, 2, 4)
        noise_level: int = spec(20, 0, 350)

    def _prepare(self, image: np.ndarray, ctx: StageContext) -> _Job | StageResult:
        size, size8, src = _model_input(image)
        return _Job(ctx, size, size8, {"image": src})

    def _call_kwargs(self, shape: tuple) -> dict[str, Any]:
        return {"noise_level": self.params.noise_level}

    def _finish(self, job: _Job, out: np.ndarray, info: dict[str, Any]) -> StageResult:
        h, w = job.size
        s = self.params.scale
        return StageResult(image=_resize(out, w * s, h * s), info={"model_scale": 4, **info})
