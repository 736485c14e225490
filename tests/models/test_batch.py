"""Batched seeds for the diffusers backends: bit-identical to one-by-one, failure modes named per seed,
the runner's batches end to end, and the benchmark's table (tiny sizes, nothing timed)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from harness.errors import StageError
from harness.run import batching
from harness.models.tiny import build_tiny
from harness.stages.base import (
    StageContext,
    batch_call,
    build_backend,
    run_stage,
    run_stage_batch,
)

SEEDS = (1, 2, 3, 4)
PROMPT = "a photo of a cat"


def image(h=40, w=48, seed=0):
    return np.random.default_rng(seed).integers(1, 255, (h, w, 3), dtype=np.uint8)


def box_mask(h=40, w=48):
    m = np.zeros((h, w), np.float32)
    m[8:24, 6:40] = 1.0
    return m


def cases(name):
    """``(stage, image, contexts)`` of one backend over SEEDS."""
    if name == "sd":
        return "generate", np.full((40, 48, 3), 128, np.uint8), [StageContext(s, prompt=PROMPT) for s in SEEDS]
    if name == "sd_img2img":
        return "generate", image(), [StageContext(s, prompt=PROMPT) for s in SEEDS]
    if name == "sd_inpaint":
        return "inpaint", image(), [StageContext(s, mask=box_mask()) for s in SEEDS]
    return "upscale", image(16, 24), [StageContext(s) for s in SEEDS]


def one_by_one_and_batched(name, **params):
    stage, img, ctxs = cases(name)
    b = build_backend(stage, name, {"steps": 2, **params})
    singles = [run_stage(b, img, c).image for c in ctxs]
    batched = [r.image for r in run_stage_batch(b, [img] * len(ctxs), ctxs)]
    return singles, batched


# --- identity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sd", "sd_img2img", "sd_inpaint", "sd_upscale"])
def test_a_batch_of_four_seeds_is_bit_identical_to_one_by_one(name):
    singles, batched = one_by_one_and_batched(name)
    assert [a.tobytes() for a in batched] == [a.tobytes() for a in singles]
    assert len({a.tobytes() for a in singles}) == 4  # four seeds, four images


@pytest.mark.parametrize("name,params", [("sd", {"guidance": 3.0, "scheduler": "euler", "negative_prompt": "blurry"}),
                                         ("sd_inpaint", {"guidance": 2.0, "strength": 0.7, "scheduler": "dpm"}),
                                         ("sd_upscale", {"guidance": 2.0, "scheduler": "euler"})])
def test_identical_with_guidance_and_schedulers_that_draw_noise_every_step(name, params):
    singles, batched = one_by_one_and_batched(name, **params)
    assert [a.tobytes() for a in batched] == [a.tobytes() for a in singles]


def test_a_mixed_batch_answers_each_item_as_alone():
    """Prompts, sizes and pass-through items mixed: one model call per input size, the rest answered directly."""
    b = build_backend("generate", "sd", {"steps": 2})
    imgs = [image(), image(), image(24, 32), image()]
    ctxs = [StageContext(1, prompt=PROMPT), StageContext(2, prompt="a red house"), StageContext(3, prompt=PROMPT),
            StageContext(4)]  # no prompt: passed through
    got = run_stage_batch(b, imgs, ctxs)
    for img, ctx, r in zip(imgs, ctxs, got):
        alone = run_stage(b, img, ctx)
        assert r.image.tobytes() == alone.image.tobytes() and r.info == alone.info
    assert got[3].info == {"generated": 0}


def test_every_diffusers_backend_speaks_the_batch_protocol():
    for stage, name in (("generate", "sd"), ("generate", "sd_img2img"), ("inpaint", "sd_inpaint"),
                        ("upscale", "sd_upscale")):
        assert batch_call(build_backend(stage, name, {})) is not None


def test_the_patched_modules_are_batch_invariant_and_unchanged_alone():
    import torch

    from harness.models.invariance import _conv2d, _group_norm, _linear

    torch.manual_seed(0)
    conv, lin, gn = torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Linear(32, 128), torch.nn.GroupNorm(8, 32)
    x = torch.randn(4, 32, 8, 8)
    channels_last_ish = torch.randn(4, 64, 32).transpose(-1, -2).reshape(4, 32, 8, 8)  # an attention block's output
    rows = torch.randn(4, 32)  # the time embedding: one row per sample
    with torch.no_grad():
        for fn, mod, inp in ((_conv2d, conv, x), (_linear, lin, rows), (_linear, lin, torch.randn(4, 7, 32)),
                             (_group_norm, gn, channels_last_ish), (_conv2d, conv, channels_last_ish)):
            full = fn(mod, inp)
            assert all(torch.equal(full[i:i + 1], fn(mod, inp[i:i + 1])) for i in range(4)), (fn, inp.shape)
        one = x[:1].contiguous()
        assert torch.equal(_conv2d(conv, one), conv(one)) and torch.equal(_group_norm(gn, one), gn(one))
        assert torch.equal(_linear(lin, rows[:1]), lin(rows[:1]))


def test_loaded_pipelines_are_patched():
    from harness.models.invariance import (
        invariance_disabled,
        is_batch_invariant,
    )

    pipe = build_backend("generate", "sd", {}).pipeline()[0]
    assert is_batch_invariant(pipe)
    with invariance_disabled(pipe):
        assert not is_batch_invariant(pipe)
    assert is_batch_invariant(pipe) and "forward" in pipe.unet.conv_in.__dict__


# --- failure modes, one-by-one and batched ------------------------------------------------------------------------


def broken(tmp_path, kind, what):
    """A tiny checkpoint of ``kind`` whose UNet makes NaN latents, whose VAE decodes NaN, or decodes black."""
    import torch

    pipe = build_tiny(kind, "a")
    with torch.no_grad():
        if what == "nan_latents":
            pipe.unet.conv_out.bias.fill_(float("nan"))
        elif what == "nan_pixels":
            pipe.vae.decoder.conv_out.bias.fill_(float("nan"))
        else:  # black: every decoded pixel far below -1
            pipe.vae.decoder.conv_out.weight.zero_()
            pipe.vae.decoder.conv_out.bias.fill_(-10.0)
    path = tmp_path / f"{kind}-{what}"
    pipe.save_pretrained(path)
    return str(path)


CHECKPOINT = {"sd": "sd", "sd_img2img": "sd", "sd_inpaint": "sd_inpaint", "sd_upscale": "sd_upscale"}


@pytest.mark.parametrize("name,what,message", [
    ("sd", "nan_latents", r"the latents became NaN or inf at denoising step 1"),
    ("sd_img2img", "nan_pixels", r"the model produced NaN or inf pixels"),
    ("sd_inpaint", "nan_latents", r"the latents became NaN or inf at denoising step 1"),
    ("sd_upscale", "nan_latents", r"the latents became NaN or inf at denoising step 1"),
    ("sd_upscale", "black", r"output image is all black"),
    ("sd", "black", r"output image is all black"),
])
def test_broken_models_are_stage_errors_naming_the_seed_in_a_batch(tmp_path, name, what, message):
    stage, img, ctxs = cases(name)
    b = build_backend(stage, name, {"steps": 2, "model_path": broken(tmp_path, CHECKPOINT[name], what)})
    label = rf"^{stage} backend '{name}': "
    with pytest.raises(StageError, match=label + message + "$"):
        run_stage(b, img, ctxs[0])
    batch = r" \(seed 1, 2, 3, 4 of a batch of 4\)" if what == "nan_latents" else r" \(seed 1 of a batch of 4\)"
    with pytest.raises(StageError, match=label + message + batch + "$"):
        run_stage_batch(b, [img] * 4, ctxs)


@pytest.mark.parametrize("name", ["sd", "sd_img2img", "sd_inpaint", "sd_upscale"])
def test_a_wrong_output_size_is_a_stage_error_in_both_paths(monkeypatch, name):
    stage, img, ctxs = cases(name)
    b = build_backend(stage, name, {"steps": 2})
    cls = type(b)
    finish = cls._finish

    def cropped(self, job, out, info):
        r = finish(self, job, out, info)
        return dataclasses.replace(r, image=r.image[:-2])

    monkeypatch.setattr(cls, "_finish", cropped)
    with pytest.raises(StageError, match=rf"^{stage} backend '{name}': output is \d+x\d+.*(input was|expected)"):
        run_stage(b, img, ctxs[0])
    with pytest.raises(StageError, match=r"\(seed 1 of a batch of 4\)$"):
        run_stage_batch(b, [img] * 4, ctxs)


# --- the runner, end to end ---------------------------------------------------------------------------------------

SUITE = '''
name = "sdbatch"
seeds = [1, 2, 3, 4]
vectors = ["generated_texture"]
batch_seeds = {batch}
rerun_check = {rerun}

[pipelines.p]
generate = {{ backend = "sd", steps = 2{extra} }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea" }}
'''


def run_suite_cases(tmp_path, batch, rerun="false", extra="", name="s"):
    from harness.run.cache import StageCache
    from harness.run.case import execute_case
    from harness.suite.suites import load_suite

    p = tmp_path / f"{name}.toml"
    p.write_text(SUITE.format(batch=batch, rerun=rerun, extra=extra))
    suite = load_suite(p)
    cache = StageCache(None)
    batching.reset_spot_checks()
    return {c.seed: execute_case(c, suite, tmp_path / name, cache) for c in suite.cases()}


def test_the_runner_batches_sd_seeds_and_they_match_one_by_one_and_a_rerun(tmp_path):
    batched = run_suite_cases(tmp_path, 4, rerun="true", name="b")
    plain = run_suite_cases(tmp_path, 1, name="p")
    assert [batched[s].error for s in SEEDS] == [None] * 4
    assert [batched[s].config["cache"]["generate"] for s in SEEDS] == ["miss", "hit", "hit", "hit"]
    assert [batched[s].config["batch"]["index"] for s in SEEDS] == [0, 1, 2, 3]
    assert "refused" not in batched[1].config["batch"]
    for s in SEEDS:
        assert batched[s].measurement == plain[s].measurement
        [rerun] = [c for c in batched[s].expectations if c.slice.startswith("rerun_identical")]
        assert rerun.status == "pass", rerun.note
        settings = batched[s].config["rerun"]["settings"]
        assert settings["stages"]["generate"] == {"backend": "sd", "device": "cpu", "dtype": "float32", "threads": 1}
        assert settings["torch"]["loaded"] and "deterministic_algorithms" in settings["torch"]
        assert {"torch", "diffusers", "numpy"} <= set(settings["versions"])


def test_a_nan_model_in_a_batch_is_each_case_s_error_with_the_one_by_one_reason(tmp_path):
    path = broken(tmp_path, "sd", "nan_latents")
    outs = run_suite_cases(tmp_path, 4, extra=f', model_path = "{path}"')
    for s in SEEDS:
        assert outs[s].error == ("StageError: generate backend 'sd': the latents became NaN or inf at denoising "
                                 "step 1")
    assert outs[1].config["batch"]["fallback"].endswith("(seed 1, 2, 3, 4 of a batch of 4)")


# --- the benchmark ------------------------------------------------------------------------------------------------


def test_the_model_bench_prints_its_table(capsys):
    from harness.run.bench import run_model_bench

    lines: list[str] = []
    code = run_model_bench(seeds=2, size=32, steps=2, repeats=1, backends=("sd", "sd_upscale"), stock=True,
                           out=lines.append)
    assert lines[0].startswith("harness bench --models: diffusers backends on the built-in tiny checkpoints, 2 seeds")
    assert lines[1].split() == ["backend", "one-by-one", "img/s", "batched", "img/s", "ratio", "batch", "=",
                                "one-by-one", "stock", "batched", "img/s", "stock", "ratio", "stock", "diff"]
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert set(rows) == {"sd", "sd_upscale"} and all(r[4] == "identical" for r in rows.values())
    assert all(float(r[1]) > 0 and float(r[2]) > 0 for r in rows.values())
    assert code in (0, 1)  # 1 only if a batch came out slower on a loaded machine: not timed here


def test_harness_bench_models_on_the_command_line(capsys):
    from harness.cli.app import main

    code = main(["bench", "--models", "--seeds", "2", "--size", "32", "--steps", "2", "--repeats", "1", "--no-stock"])
    out = capsys.readouterr().out
    assert "sd_inpaint" in out and "identical" in out and "stock" not in out.split("\n", 1)[1]
    assert code in (0, 1)
