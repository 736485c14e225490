"""Built-in tiny Stable Diffusion checkpoints: randomly initialised from config, saved, loaded back.

As diffusers' own fast tests do, each pipeline is built from a tiny config (UNet with
``block_out_channels=(32, 64)``, a tiny AutoencoderKL -- 4 levels, i.e. SD's 8x latent
downsampling, for ``sd``/``sd_inpaint`` --, a tiny 2-layer ``CLIPTextModel``) seeded
with ``torch.manual_seed`` and put in ``.eval()``; unlike them nothing comes from the
Hub: the tokenizer is CLIP's real one, rebuilt from CLIP's BPE file (shipped in models/clip/)
(:mod:`harness.models.tokenizer`; vocab 49,408 so real prompts tokenize as
they would for a real checkpoint).

Each ``(kind, variant)`` is saved once with ``save_pretrained`` into
:func:`models_dir` ``/tiny-<kind>-<variant>`` -- built in a temporary sibling folder,
then renamed into place, so a concurrent builder or a crash never leaves half a
checkpoint -- and the backends load it through the very same
``from_pretrained(path, local_files_only=True)`` call as a user's checkpoint.

``kind``: ``sd`` (text-to-image, UNet in 4), ``sd_inpaint`` (UNet in 9 = latents +
mask + masked-image latents), ``sd_upscale`` (the x4 upscaler layout: UNet in 7 =
latents + low-res RGB, class-embedded noise level, 3-level VAE = x4, v-prediction).
``variant``: ``a`` / ``b`` -- the same architecture with different init seeds, so a
model swap is a real change of weights.  The weights are random: the images are
structured noise, which is all a regression harness needs from them in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

from harness.errors import ConfigError

__all__ = [
    "KINDS",
    "UNET_IN_CHANNELS",
    "VARIANTS",
    "VARIANT_SEEDS",
    "build_tiny",
    "ensure_tiny",
    "models_dir",
    "save_tiny",
    "tiny_path",
]

KINDS = ("sd", "sd_inpaint", "sd_upscale")
VARIANTS = ("a", "b")
VARIANT_SEEDS = {"a": 0, "b": 1}
UNET_IN_CHANNELS = {"sd": 4, "sd_inpaint": 9, "sd_upscale": 7}
FORMAT = 3  # bump when the tiny configs change: the folder name changes with it, old ones are never reused
_LOCK = threading.Lock()


def models_dir() -> Path:
    """``$HARNESS_MODELS_DIR`` or ``~/.cache/harness/models``."""
    env = os.environ.get("HARNESS_MODELS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "harness" / "models"


def tiny_path(kind: str, variant: str = "a", root: Path | None = None) -> Path:
    _check(kind, variant)
    return Path(root or models_dir()) / f"tiny-{kind}-{variant}-v{FORMAT}"


def _check(kind: str, variant: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown tiny pipeline {kind!r}; allowed: {', '.join(KINDS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown tiny variant {variant!r}; allowed: {', '.join(VARIANTS)}")


def _text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32,
                         intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2,
                         vocab_size=49408, max_position_embeddings=77, projection_dim=32)
    return CLIPTextModel(cfg).eval()


def build_tiny(kind: str, variant: str = "a", tokenizer_dir: Path | None = None):
    """A freshly initialised tiny pipeline of ``kind`` (not saved).  Deterministic per ``variant``."""
    _check(kind, variant)
    from harness.models.offline import force_offline

    force_offline()
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    from harness.models.tokenizer import clip_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = clip_tokenizer(Path(tokenizer_dir or tmp))
    seed = VARIANT_SEEDS[variant] * 1000 + KINDS.index(kind)
    torch.manual_seed(seed)
    if kind == "sd_upscale":
        # diffusers' fast-test layout of the x4 upscaler, at half its width (16/16/32 channels, 8 norm groups) and
        # without the VAE's mid-block attention: the UNet runs at the input's size and the VAE decodes at 4x it,
        # so a 256x256 input means 256x256 latents and a 1024x1024 decode (attention there would cost ~4x more)
        unet = UNet2DConditionModel(
            block_out_channels=(16, 16, 32), layers_per_block=1, sample_size=32, in_channels=7, out_channels=4,
            norm_num_groups=8,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
            attention_head_dim=8, use_linear_projection=True, only_cross_attention=(True, True, False),
            num_class_embeds=100).eval()
        vae = AutoencoderKL(block_out_channels=[16, 16, 32], in_channels=3, out_channels=3, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                            layers_per_block=1, norm_num_groups=8, mid_block_add_attention=False,
                            scaling_factor=0.08333).eval()
        text_encoder = _text_encoder()
        pipe = StableDiffusionUpscalePipeline(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
            low_res_scheduler=DDPMScheduler(), scheduler=DDIMScheduler(prediction_type="v_prediction"),
            safety_checker=None, feature_extractor=None, watermarker=None, max_noise_level=350)
    else:
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=1, sample_size=32,
            in_channels=UNET_IN_CHANNELS[kind], out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32).eval()
        # 4 levels: downsamples by 8 like SD's VAE, so the UNet runs on h/8 x w/8 latents (a 256x256 image
        # gives 32x32 latents; with diffusers' 2-level test VAE the UNet's attention at 256x256 costs ~30x more)
        vae = AutoencoderKL(block_out_channels=[32, 32, 64, 64], in_channels=3, out_channels=3, latent_channels=4,
                            down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                            layers_per_block=1).eval()
        text_encoder = _text_encoder()
        scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                  clip_sample=False, set_alpha_to_one=False, steps_offset=1)
        cls = StableDiffusionPipeline if kind == "sd" else StableDiffusionInpaintPipeline
        pipe = cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny(pipe, dest: Path) -> Path:
    """``pipe.save_pretrained`` into ``dest``, atomically (temp sibling folder, then rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        from diffusers.utils import logging as dlog
        from transformers.utils import logging as tlog

        dlog.disable_progress_bar()
        tlog.disable_progress_bar()
        pipe.save_pretrained(tmp, safe_serialization=True)
        (tmp / "harness_tiny.json").write_text(json.dumps({"format": FORMAT}) + "\n")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not (dest / "model_index.json").is_file():  # not a concurrent builder that won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def ensure_tiny(kind: str, variant: str = "a", root: Path | None = None) -> Path:
    """The folder of the built-in tiny checkpoint ``(kind, variant)``, built and saved on first use."""
    dest = tiny_path(kind, variant, root)
    if (dest / "model_index.json").is_file():
        return dest
    with _LOCK:
        if not (dest / "model_index.json").is_file():
            save_tiny(build_tiny(kind, variant), dest)
    return dest
