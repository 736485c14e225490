"""diffusers SD backends (generate: sd, inpaint: sd_inpaint, upscale: sd_upscale) on the built-in tiny
checkpoints: built, saved, loaded through from_pretrained(local_files_only=True), deterministic, offline."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from harness.errors import ConfigError, StageError
from harness.models import diffusers_backends as db
from harness.models.tiny import build_tiny, ensure_tiny, models_dir, tiny_path
from harness.stages import (
    StageContext,
    backend_config,
    build_backend,
    run_stage,
)

PROMPT = "a photo of a cat"


def image(h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(1, 255, (h, w, 3), dtype=np.uint8)


def gen(seed=1, img=None, prompt=PROMPT, **params):
    img = image() if img is None else img
    return run_stage(build_backend("generate", "sd", params), img, StageContext(seed, prompt=prompt)).image


def box_mask(h=64, w=64):
    m = np.zeros((h, w), np.float32)
    m[16:40, 8:48] = 1.0
    m[44:50, 8:48] = 0.7  # soft, >= 0.5: filled
    m[52:58, 8:48] = 0.3  # soft, < 0.5: left alone
    return m


# --- the built-in tiny checkpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,cls", [("sd", "StableDiffusionPipeline"), ("sd_inpaint", "StableDiffusionInpaintPipeline"),
                                      ("sd_upscale", "StableDiffusionUpscalePipeline")])
def test_tiny_checkpoint_is_a_saved_diffusers_folder(kind, cls):
    p = ensure_tiny(kind, "a")
    assert p == tiny_path(kind, "a") and p.parent == models_dir()
    assert json.loads((p / "model_index.json").read_text())["_class_name"] == cls
    assert not [q for q in p.parent.iterdir() if q.name.startswith(".")]  # no temp folder left behind
    assert ensure_tiny(kind, "a") == p  # built once


def test_generate_is_deterministic_per_seed():
    a, b, c = gen(seed=1), gen(seed=1), gen(seed=2)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)
    assert a.std() > 1  # not a flat image


def test_variants_and_schedulers_are_real_swaps():
    a = gen()
    assert not np.array_equal(a, gen(variant="b"))
    assert not np.array_equal(a, gen(scheduler="euler"))
    assert not np.array_equal(gen(scheduler="euler"), gen(scheduler="dpm"))
    assert np.array_equal(a, gen(scheduler="ddim"))  # the tiny checkpoints' own scheduler is DDIM
    assert not np.array_equal(a, gen(prompt="a red house"))
    assert not np.array_equal(a, gen(guidance=5.0, negative_prompt="blurry"))


def test_generate_keeps_the_vector_size_and_passes_prompt_less_vectors_through():
    img = image(52, 60)
    assert gen(img=img).shape == (52, 60, 3)
    r = run_stage(build_backend("generate", "sd", {}), img, StageContext(0))
    assert np.array_equal(r.image, img) and r.info == {"generated": 0}


def test_build_backend_and_run_stage_end_to_end():
    b = build_backend("generate", "sd", {"steps": 3, "scheduler": "pndm", "device": "auto", "dtype": "float32"})
    r = run_stage(b, image(), StageContext(5, prompt=PROMPT))
    assert r.image.shape == (64, 64, 3) and r.info["generated"] == 1 and r.info["device"] == db.resolve_device("auto")
    cfg = backend_config(b)
    assert cfg["stage"] == "generate" and cfg["backend"] == "sd"
    assert cfg["params"] == {"model_path": "", "variant": "a", "device": "auto", "dtype": "float32",
                             "scheduler": "pndm", "steps": 3, "guidance": 1.0, "prompt": "", "negative_prompt": "",
                             "threads": 0}
    json.dumps(cfg)
    assert b.weight_paths() == [tiny_path("sd", "a").resolve()]


def test_loaded_once_per_process():
    db.clear_cache()
    gen()
    gen(seed=3)
    gen(variant="b")
    keys = sorted(db.PIPELINE_CACHE)
    assert len(keys) == 2
    assert {k[1] for k in keys} == {str(tiny_path("sd", v).resolve()) for v in "ab"}
    assert all(k[2:] == ("float32", db.resolve_device("auto"), "default") for k in keys)


def test_a_user_checkpoint_runs_exactly_like_the_builtin_one(tmp_path):
    pipe = build_tiny("sd", "a")  # built here, outside the backend
    pipe.save_pretrained(tmp_path / "my-sd")
    mine = gen(model_path=str(tmp_path / "my-sd"))
    assert np.array_equal(mine, gen())
    assert backend_config(build_backend("generate", "sd", {"model_path": str(tmp_path / "my-sd")}))["params"][
        "model_path"] == str(tmp_path / "my-sd")


def test_bfloat16_runs():
    out = gen(dtype="bfloat16")
    assert out.shape == (64, 64, 3)


# --- configuration errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage,name", [("generate", "sd"), ("inpaint", "sd_inpaint"), ("upscale", "sd_upscale")])
def test_hub_id_is_a_config_error(stage, name):
    with pytest.raises(ConfigError, match=rf"^{stage} backend '{name}': model_path 'runwayml/stable-diffusion-v1-5' "
                                          r"is not an existing local folder \(it looks like a Hugging Face Hub id: "
                                          r"nothing is downloaded"):
        build_backend(stage, name, {"model_path": "runwayml/stable-diffusion-v1-5"})


def test_missing_or_wrong_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"model_path '.*nope' is not an existing local folder; a diffusers "
                                          r"checkpoint folder with model_index.json is needed$"):
        build_backend("generate", "sd", {"model_path": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match=r"has no model_index.json: not a diffusers checkpoint folder"):
        build_backend("generate", "sd", {"model_path": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"has a UNet with 9 input channels; a StableDiffusionPipeline checkpoint "
                                          r"has 4"):
        build_backend("generate", "sd", {"model_path": str(ensure_tiny("sd_inpaint", "a"))})


@pytest.mark.parametrize("params,msg", [({"dtype": "float64"}, r"dtype='float64' is invalid; allowed: one of: float32"),
                                        ({"scheduler": "lms"}, r"scheduler='lms' is invalid; allowed: one of: default"),
                                        ({"device": "tpu"}, r"device='tpu' is invalid"),
                                        ({"variant": "c"}, r"variant='c' is invalid; allowed: one of: a, b"),
                                        ({"steps": 0}, r"steps=0 is out of range")])
def test_bad_parameters(params, msg):
    with pytest.raises(ConfigError, match=msg):
        build_backend("generate", "sd", params)


def test_steps_times_strength_must_leave_a_step():
    with pytest.raises(ConfigError, match=r"^inpaint backend 'sd_inpaint': steps=2 x strength=0\.3 leaves no denoising "
                                          r"step; raise steps or strength$"):
        build_backend("inpaint", "sd_inpaint", {"steps": 2, "strength": 0.3})


def test_nan_latents_are_a_stage_error_with_the_reason(tmp_path):
    import torch

    pipe = build_tiny("sd", "a")
    with torch.no_grad():
        pipe.unet.conv_out.bias.fill_(float("nan"))
    pipe.save_pretrained(tmp_path / "broken")
    with pytest.raises(StageError, match=r"^generate backend 'sd': the latents became NaN or inf at denoising step 1$"):
        gen(model_path=str(tmp_path / "broken"))


# --- inpaint ------------------------------------------------------------------------------------------------------


def inpaint(img, mask, seed=0, **params):
    return run_stage(build_backend("inpaint", "sd_inpaint", params), img, StageContext(seed, mask=mask))


@pytest.mark.parametrize("shape", [(64, 64), (50, 60)])
def test_inpaint_leaves_unmasked_pixels_identical(shape):
    img, mask = image(*shape), box_mask(*shape)
    r = inpaint(img, mask)
    fill = mask >= 0.5
    assert np.array_equal(r.image[~fill], img[~fill])
    assert r.info["filled_px"] == int(fill.sum())
    assert np.mean(r.image[fill] != img[fill]) > 0.5


def test_inpaint_is_deterministic_and_seeded():
    img, mask = image(), box_mask()
    a, b, c = inpaint(img, mask, 3).image, inpaint(img, mask, 3).image, inpaint(img, mask, 4).image
    assert a.tobytes() == b.tobytes() and not np.array_equal(a, c)
    assert not np.array_equal(a, inpaint(img, mask, 3, variant="b").image)
    assert not np.array_equal(a, inpaint(img, mask, 3, scheduler="euler").image)


def test_inpaint_without_a_mask_returns_the_input():
    img = image()
    for mask in (None, np.zeros((64, 64), np.float32)):
        r = inpaint(img, mask)
        assert np.array_equal(r.image, img) and r.info == {"filled_px": 0}


# --- upscale ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,scale", [((32, 32), 4), ((30, 20), 2), ((24, 32), 3)])
def test_upscale_output_size(shape, scale):
    img = image(*shape)
    r = run_stage(build_backend("upscale", "sd_upscale", {"scale": scale}), img, StageContext(0))
    assert r.image.shape == (shape[0] * scale, shape[1] * scale, 3) and r.info["model_scale"] == 4


def test_upscale_is_deterministic_and_seeded():
    img = image(32, 32)

    def up(seed, **p):
        return run_stage(build_backend("upscale", "sd_upscale", p), img, StageContext(seed)).image

    a = up(1)
    assert a.tobytes() == up(1).tobytes()
    assert not np.array_equal(a, up(2))
    assert not np.array_equal(a, up(1, variant="b"))
    assert not np.array_equal(a, up(1, scheduler="euler"))


# --- offline --------------------------------------------------------------------------------------------------


def test_nothing_touches_the_network(monkeypatch, tmp_path):
    """A fresh build, save, load and run with sockets disabled: no connection is even attempted."""
    attempts = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)

    def no_dns(host, *a, **k):
        attempts.append(host)
        raise OSError("name lookup disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path))
    db.clear_cache()
    out = gen(variant="b")
    assert out.shape == (64, 64, 3) and (tiny_path("sd", "b") / "model_index.json").is_file()
    assert tiny_path("sd", "b").parent == tmp_path
    assert attempts == []
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    import huggingface_hub.constants as c

    assert c.HF_HUB_OFFLINE
    db.clear_cache()


# --- img2img ------------------------------------------------------------------------------------------------------


def test_img2img_runs_the_text_to_image_checkpoint():
    img = image(52, 60)

    def i2i(seed=1, **p):
        return run_stage(build_backend("generate", "sd_img2img", p), img, StageContext(seed, prompt=PROMPT)).image

    a = i2i(strength=0.6)
    assert a.shape == img.shape and a.tobytes() == i2i(strength=0.6).tobytes()
    assert not np.array_equal(a, i2i(seed=2, strength=0.6)) and not np.array_equal(a, i2i(strength=0.9))
    assert not np.array_equal(a, i2i(strength=0.6, variant="b"))
    assert build_backend("generate", "sd_img2img", {}).checkpoint() == tiny_path("sd", "a").resolve()
    r = run_stage(build_backend("generate", "sd_img2img", {}), img, StageContext(0))
    assert np.array_equal(r.image, img) and r.info == {"generated": 0}
    with pytest.raises(ConfigError, match=r"UNet with 7 input channels; a StableDiffusionImg2ImgPipeline checkpoint "
                                          r"has 4"):
        build_backend("generate", "sd_img2img", {"model_path": str(ensure_tiny("sd_upscale", "a"))})
