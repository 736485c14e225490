"""generate: produce the pipeline's input image.

``source``          the vector's rendered image (photograph, file, recipe), unchanged:
                    the runner renders the vector and passes that image in.
``tiny_diffusion``  prompt -> image with a diffusers UNet2DConditionModel + AutoencoderKL
                    + DDIM loop.  By default the models are *tiny and randomly
                    initialised from config* (as diffusers' own fast tests do: seeded
                    with ``torch.manual_seed(model_seed)``, ``.eval()``), so CI needs no
                    weights; ``model_path`` loads a real local checkpoint instead
                    (``local_files_only``: nothing is downloaded).  For vectors without
                    a prompt it passes the image through, so one pipeline serves both.

Seam for prompt-based generation (diffusers, later): register another backend
here with ``@register("generate", "<name>")``, a frozen ``Params`` dataclass
(prompt, steps, guidance, size, ...) and the usual ``__call__(image, ctx)``.
It must take its randomness from ``ctx.seed`` only (e.g. a
``torch.Generator().manual_seed(ctx.seed)``), import torch/diffusers inside
``__init__``/``__call__`` (never at module import), load weights from a local
path given as a parameter (nothing may download at run time), and return a
``StageResult(image=<(H, W, 3) uint8>)``; ``image`` may be ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.imageio import float_to_uint8
from harness.errors import ConfigError, StageError
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.stages.paths import path_field

__all__ = ["Source", "TinyDiffusion", "toy_prompt_embedding"]


@register("generate", "source")
class Source(BackendBase):
    """The vector's own image, unchanged."""

    @dataclass(frozen=True)
    class Params:
        pass

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        return StageResult(image=image.copy())


TOY_VOCAB = 4096
TOY_TOKENS = 16
TOY_DIM = 32


@lru_cache(maxsize=4)
def _tiny_models(model_seed: int):
    """Tiny UNet + VAE + a toy token embedding, randomly initialised from config."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(model_seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TOY_DIM, norm_num_groups=32).eval()
    vae = AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=32,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"]).eval()
    embedding = torch.nn.Embedding(TOY_VOCAB, TOY_DIM).eval()
    return unet, vae, embedding


def toy_prompt_embedding(prompt: str, embedding) -> "torch.Tensor":  # noqa: F821
    """A deterministic stand-in for a text encoder: words hashed to ids, looked up, padded.

    diffusers' fast tests use a tiny CLIP from the Hub; nothing may download here, so
    the tiny model gets this toy encoder.  Different prompts give different embeddings,
    which is what a regression harness needs from it.
    """
    import torch

    words = prompt.lower().split()[:TOY_TOKENS] or [""]
    ids = [int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "big") % (TOY_VOCAB - 1) + 1 for w in words]
    ids += [0] * (TOY_TOKENS - len(ids))
    with torch.no_grad():
        return embedding(torch.tensor([ids]))


@register("generate", "tiny_diffusion")
class TinyDiffusion(BackendBase):
    @dataclass(frozen=True)
    class Params:
        steps: int = spec(4, 1, 100)
        guidance: float = spec(1.0, 1.0, 20.0)
        resolution: int = spec(64, 32, 1024)
        model_seed: int = spec(0, 0, 2**31 - 1)
        model_path: str = path_field()  # a local diffusers checkpoint folder
        threads: int = spec(0, 0, 64)  # 0: the suite's `threads` (environment.configured_threads)

    def weight_paths(self) -> list[Path]:
        """The checkpoint this backend loads, if any (hashed into the stage cache key)."""
        return [Path(self.params.model_path)] if self.params.model_path else []

    def __init__(self, params) -> None:
        super().__init__(params)
        if params.resolution % 8:
            raise ConfigError(f"generate backend 'tiny_diffusion': resolution={params.resolution} must be a "
                              f"multiple of 8")
        if params.model_path:
            from pathlib import Path

            if not Path(params.model_path).is_dir():
                raise ConfigError(f"generate backend 'tiny_diffusion': model_path {params.model_path!r} is not a "
                                  f"local diffusers checkpoint directory")

    def _generate(self, ctx: StageContext) -> np.ndarray:
        import torch

        from harness.threads import apply_torch_threads

        p = self.params
        apply_torch_threads(p.threads)  # the thread count changes output bits: pinned and recorded
        gen = torch.Generator().manual_seed(int(ctx.seed))
        if p.model_path:
            from diffusers import DiffusionPipeline

            pipe = DiffusionPipeline.from_pretrained(p.model_path, local_files_only=True)
            out = pipe(ctx.prompt, negative_prompt=ctx.negative_prompt, num_inference_steps=p.steps,
                       guidance_scale=p.guidance, height=p.resolution, width=p.resolution, generator=gen,
                       output_type="np")
            return np.asarray(out.images[0], dtype=np.float32)
        from diffusers import DDIMScheduler

        unet, vae, embedding = _tiny_models(p.model_seed)
        cond = toy_prompt_embedding(ctx.prompt or "", embedding)
        uncond = toy_prompt_embedding(ctx.negative_prompt or "", embedding)
        sched = DDIMScheduler(num_train_timesteps=1000)
        sched.set_timesteps(p.steps)
        side = p.resolution // 2  # this VAE downsamples by 2
        latents = torch.randn((1, 4, side, side), generator=gen)
        with torch.no_grad():
            for t in sched.timesteps:
                if p.guidance > 1.0:
                    both = unet(torch.cat([latents] * 2), t, encoder_hidden_states=torch.cat([uncond, cond])).sample
                    u, c = both.chunk(2)
                    noise = u + p.guidance * (c - u)
                else:
                    noise = unet(latents, t, encoder_hidden_states=cond).sample
                latents = sched.step(noise, t, latents).prev_sample
            img = vae.decode(latents / vae.config.scaling_factor).sample[0]
        img = ((img.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
        if not np.all(np.isfinite(img)):
            raise StageError("generate backend 'tiny_diffusion': the model produced NaN or inf")
        return img

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        if ctx.prompt is None:  # not a prompt vector: pass its image through
            return StageResult(image=image.copy(), info={"generated": 0})
        from PIL import Image

        out = float_to_uint8(self._generate(ctx))
        h, w = image.shape[:2]
        if out.shape[:2] != (h, w):
            out = np.asarray(Image.fromarray(out).resize((w, h), Image.Resampling.LANCZOS))
        from harness.threads import configured_threads

        return StageResult(image=out, info={"generated": 1, "threads": self.params.threads or configured_threads()})
