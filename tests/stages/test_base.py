"""harness.stages.base: registries, parameter validation, custom backends, output checks."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from harness.errors import ConfigError, StageError
from harness.stages import (
    STAGES,
    StageContext,
    StageResult,
    backend_config,
    backend_names,
    build_backend,
    run_stage,
    validate_output,
)

CTX = StageContext(seed=7)


# --- custom backends, resolved by f"{__name__}:attr" ---------------------------------------------------------------


def invert(image, ctx, amount: int = 255):
    return (amount - image.astype(np.int32)).clip(0, 255).astype(np.uint8)


def as_float(image, ctx):
    return image / 255.0


def nan_image(image, ctx):
    out = image / 255.0
    out[0, 0, 0] = np.nan
    return out


def black(image, ctx):
    return np.zeros_like(image)


def wrong_size(image, ctx):
    return image[:-1]


def threshold_mask(image, ctx, level: int = 128):
    return (image[..., 0] >= level).astype(np.float32)


def bad_mask(image, ctx):
    return StageResult(image=None, mask=np.full(image.shape[:2], 1.5, np.float32))


def kwargs_fn(image, ctx, **params):
    return StageResult(image=image.copy(), info=dict(params))


class Brighten:
    stage = "denoise"

    @dataclass(frozen=True)
    class Params:
        offset: int = 10

    def __init__(self, params):
        self.params = params

    def __call__(self, image, ctx):
        return StageResult(image=np.clip(image.astype(np.int32) + self.params.offset, 0, 255).astype(np.uint8),
                           info={"offset": self.params.offset})


def custom(attr: str) -> str:
    return f"{__name__}:{attr}"


def image(h=32, w=48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(1, 255, (h, w, 3), dtype=np.uint8)


# --- registries --------------------------------------------------------------------------------------------------


def test_stages_and_builtin_backend_names():
    assert STAGES == ("generate", "detect", "mask", "inpaint", "denoise", "upscale")
    assert backend_names("generate") == ["face_gan", "sd", "sd_img2img", "source", "tiny_diffusion"]
    assert backend_names("detect") == ["ground_truth", "rapidocr"]
    assert backend_names("mask") == ["shape"]
    assert backend_names("inpaint") == ["biharmonic", "ns", "patchmatch", "sd_inpaint", "telea"]
    assert backend_names("denoise") == ["bilateral", "nlmeans", "oidn", "tv"]
    assert backend_names("upscale") == ["bicubic", "edge_aware", "guided", "lanczos", "nearest", "realcugan",
                                        "realesrgan", "realsr", "sd_upscale", "waifu2x"]


def test_import_is_light():
    """Importing harness.stages and loading every built-in module pulls in no heavy library."""
    code = ("import sys, harness.stages as s\n"
            "required = {'guided': {'guide': 'stage:source'}}  # its one parameter without a default\n"
            "[s.build_backend(st, n, required.get(n, {})) for st in s.STAGES for n in s.backend_names(st)]\n"
            "print(sorted(m for m in ('torch', 'cv2', 'onnxruntime', 'ncnn', 'rapidocr', 'patchmatch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_stage_and_backend():
    with pytest.raises(ConfigError, match=r"unknown stage 'paint'; allowed: generate, detect, mask, inpaint"):
        build_backend("paint", "telea", {})
    with pytest.raises(ConfigError, match=r"unknown denoise backend 'median'; allowed: bilateral, nlmeans, oidn, tv"):
        build_backend("denoise", "median", {})
    with pytest.raises(ConfigError, match=r"cannot import module 'no_such_module_xyz'"):
        build_backend("denoise", "no_such_module_xyz:f", {})
    with pytest.raises(ConfigError, match=r"has no attribute 'missing'"):
        build_backend("denoise", custom("missing"), {})


# --- parameter validation ---------------------------------------------------------------------------------------


def test_unknown_parameter_names_key_backend_and_allowed():
    with pytest.raises(ConfigError, match=r"^denoise backend 'nlmeans': unknown parameter 'sigma'; allowed: strength$"):
        build_backend("denoise", "nlmeans", {"sigma": 3})
    with pytest.raises(ConfigError, match=r"mask backend 'shape': unknown parameter 'dilate'; allowed: max_coverage, "
                                          r"dilate_px, feather_px, threshold, protect_anchors"):
        build_backend("mask", "shape", {"dilate": 3})


@pytest.mark.parametrize("stage,name,params,message", [
    ("denoise", "nlmeans", {"strength": 1.5}, r"strength=1\.5 is out of range; allowed: a number \[0, 1\]"),
    ("denoise", "tv", {"strength": -0.1}, r"strength=-0\.1 is out of range; allowed: a number \[0, 1\]"),
    ("denoise", "tv", {"strength": "high"}, r"strength='high' is invalid; allowed: a number \[0, 1\]"),
    ("denoise", "tv", {"strength": float("nan")}, r"strength=nan is invalid; allowed: a number \[0, 1\]"),
    ("upscale", "lanczos", {"scale": 2.5}, r"scale=2\.5 is invalid; allowed: an integer \[2, 4\]"),
    ("upscale", "lanczos", {"scale": 8}, r"scale=8 is out of range; allowed: an integer \[2, 4\]"),
    ("upscale", "lanczos", {"scale": True}, r"scale=True is invalid; allowed: an integer \[2, 4\]"),
    ("mask", "shape", {"protect_anchors": "yes"}, r"protect_anchors='yes' is invalid; allowed: true or false"),
    ("upscale", "realesrgan", {"model": "x8"}, r"model='x8' is invalid; allowed: one of: animavideov3, x4plus"),
    ("detect", "rapidocr", {"mode": 3}, r"mode=3 is invalid; allowed: one of: boxes, regions"),
    ("inpaint", "patchmatch", {"patch_size": 0}, r"patch_size=0 is out of range; allowed: an integer \[1, 15\]"),
])
def test_bad_values_name_key_value_and_range(stage, name, params, message):
    with pytest.raises(ConfigError, match=rf"^{stage} backend '{name}': {message}$"):
        build_backend(stage, name, params)


def test_numbers_are_coerced_to_the_field_type():
    b = build_backend("denoise", "nlmeans", {"strength": 1})
    assert b.params.strength == 1.0 and isinstance(b.params.strength, float)
    assert build_backend("upscale", "nearest", {"scale": 3.0}).params.scale == 3


def test_realesrgan_model_scale_combination_checked():
    with pytest.raises(ConfigError, match=r"model 'x4plus' has no scale 2; available: animavideov3 x2, "):
        build_backend("upscale", "realesrgan", {"model": "x4plus", "scale": 2})


def test_backend_config_is_complete_and_serialisable():
    cfg = backend_config(build_backend("mask", "shape", {"dilate_px": 3}))
    assert cfg == {"stage": "mask", "backend": "shape",
                   "params": {"max_coverage": 0.12, "dilate_px": 3, "feather_px": 0, "threshold": 0.5,
                              "protect_anchors": True, "drop_anchor_regions": 0.0}}
    assert json.loads(json.dumps(cfg)) == cfg
    for stage in STAGES:
        for name in backend_names(stage):
            required = {"guide": "stage:source"} if name == "guided" else {}  # no default for it
            json.dumps(backend_config(build_backend(stage, name, required)))


# --- custom backends --------------------------------------------------------------------------------------------


def test_custom_function_backend_with_params():
    b = build_backend("denoise", custom("invert"), {"amount": 200})
    img = image()
    out = run_stage(b, img, CTX)
    assert np.array_equal(out.image, (200 - img.astype(int)).clip(0, 255).astype(np.uint8))
    assert backend_config(b) == {"stage": "denoise", "backend": custom("invert"), "params": {"amount": 200}}
    with pytest.raises(ConfigError, match=rf"denoise backend '{custom('invert')}': unknown parameter 'gain'; "
                                          r"allowed: amount$"):
        build_backend("denoise", custom("invert"), {"gain": 2})
    kw = run_stage(build_backend("inpaint", custom("kwargs_fn"), {"anything": 1}), img, CTX)
    assert kw.info == {"anything": 1}


def test_custom_class_backend():
    b = build_backend("denoise", custom("Brighten"), {"offset": 5})
    out = run_stage(b, np.full((20, 20, 3), 100, np.uint8), CTX)
    assert out.image.max() == 105 and out.info == {"offset": 5}
    assert backend_config(b) == {"stage": "denoise", "backend": custom("Brighten"), "params": {"offset": 5}}
    with pytest.raises(ConfigError, match=r"unknown parameter 'gain'; allowed: offset"):
        build_backend("denoise", custom("Brighten"), {"gain": 1})
    with pytest.raises(ConfigError, match=rf"inpaint backend '{custom('Brighten')}' is a denoise backend"):
        build_backend("inpaint", custom("Brighten"), {})


def test_custom_detect_function_returning_a_2d_array_is_a_mask():
    img = image()
    out = run_stage(build_backend("detect", custom("threshold_mask"), {"level": 100}), img, CTX)
    assert out.image is None and out.mask.dtype == np.float32
    assert np.array_equal(out.mask, (img[..., 0] >= 100).astype(np.float32))


# --- output validation ------------------------------------------------------------------------------------------


def test_float_output_is_rounded_to_uint8():
    img = image()
    out = run_stage(build_backend("denoise", custom("as_float"), {}), img, CTX)
    assert out.image.dtype == np.uint8 and np.array_equal(out.image, img)
    half_lsb = np.full((4, 4, 3), 0.5 / 255 + 1e-9)
    r = validate_output("denoise", StageResult(image=half_lsb), np.ones((4, 4, 3), np.uint8))
    assert r.image.max() == 1


def test_nan_output_is_a_stage_error():
    b = build_backend("inpaint", custom("nan_image"), {})
    with pytest.raises(StageError,
                       match=rf"^inpaint backend '{custom('nan_image')}': output image contains NaN or inf$"):
        run_stage(b, image(), CTX)


def test_all_black_output_is_a_stage_error_unless_input_was_black():
    b = build_backend("denoise", custom("black"), {})
    with pytest.raises(StageError, match=rf"^denoise backend '{custom('black')}': output image is all black$"):
        run_stage(b, image(), CTX)
    assert run_stage(b, np.zeros((16, 16, 3), np.uint8), CTX).image.max() == 0


def test_shape_and_mask_checks():
    with pytest.raises(StageError, match=r"denoise backend '.*:wrong_size': output is 48x31, input was 48x32"):
        run_stage(build_backend("denoise", custom("wrong_size"), {}), image(), CTX)
    with pytest.raises(StageError, match=r"detect backend '.*:bad_mask': mask values 1.5..1.5 are outside \[0, 1\]"):
        run_stage(build_backend("detect", custom("bad_mask"), {}), image(), CTX)
    class Fake:
        stage, name = "upscale", "fake"
        params = build_backend("upscale", "bicubic", {"scale": 2}).params

    with pytest.raises(StageError,
                       match=r"^upscale backend 'fake': output is 48x32 for a 48x32 input, expected 96x64$"):
        validate_output("upscale", StageResult(image=image()), image(), Fake())
    with pytest.raises(StageError, match=r"denoise backend: output shape \(32, 48\) is not \(H, W, 3\)"):
        validate_output("denoise", StageResult(image=image()[..., 0]), image())
    with pytest.raises(StageError, match=r"inpaint backend: returned no image"):
        validate_output("inpaint", StageResult(image=None), image())


def test_generate_source_passes_the_image_through():
    img = image()
    out = run_stage(build_backend("generate", "source", {}), img, CTX)
    assert np.array_equal(out.image, img) and out.image is not img
