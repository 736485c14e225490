"""upscale: Real-CUGAN, waifu2x and RealSR (trained ncnn weights on the CPU) are real, distinct models.

Small inputs (24-64 px) keep the file fast; the numbers in comments were measured with one thread.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from stage_helpers import photo, psnr

from harness.errors import ConfigError
from harness.stages import StageContext, build_backend, run_stage
from harness.stages.sr import NetSpec, RealCUGAN, upscale_tiled

CTX = StageContext(0)


def upscale(name, image, **params):
    return run_stage(build_backend("upscale", name, params), image, CTX)


def grad_energy(x: np.ndarray) -> float:
    g = x.astype(float).mean(axis=2)
    return float(np.mean(np.diff(g, axis=1) ** 2) + np.mean(np.diff(g, axis=0) ** 2))


def drawing(n: int) -> np.ndarray:
    """A flat-colour drawing with dark outlines (the kind of image Real-CUGAN and waifu2x are trained on)."""
    rng = np.random.default_rng(1)
    im = np.full((n, n, 3), (235, 225, 200), np.uint8)
    for _ in range(8):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        x, y = (int(v) for v in rng.integers(0, n, 2))
        r = int(rng.integers(n // 10, n // 4))
        cv2.circle(im, (x, y), r, c, -1, cv2.LINE_AA)
        cv2.circle(im, (x, y), r, (20, 20, 20), max(2, n // 60), cv2.LINE_AA)
    return im


def low_high(image_fn, size: int, scale: int):
    hr = image_fn(size * scale)
    lr = cv2.resize(hr, (size, size), interpolation=cv2.INTER_AREA)
    return hr, lr, cv2.resize(lr, (size * scale,) * 2, interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("name,params", [
    ("realcugan", {"scale": 2}), ("realcugan", {"scale": 3, "noise": 0}), ("realcugan", {"scale": 4, "noise": 3}),
    ("realcugan", {"model": "pro", "scale": 3}), ("waifu2x", {"model": "upconv_7_photo", "noise": 2}),
    ("waifu2x", {"model": "upconv_7_anime_style_art_rgb"}), ("realsr", {})])
def test_output_is_scale_times_the_input(name, params):
    img = photo("chelsea", 64)[:26, :38]  # odd and uneven sizes: the padding keeps the strides aligned
    out = upscale(name, img, **params)
    s = params.get("scale", 4 if name == "realsr" else 2)
    assert out.image.shape == (26 * s, 38 * s, 3) and out.info == {"tiles": 1}
    assert abs(float(out.image.mean()) - float(img.mean())) < 4  # colours and levels kept


def test_waifu2x_cunet_beats_bicubic_on_a_photograph():
    hr, lr, bic = low_high(lambda n: photo("astronaut", 256)[40:40 + n, 60:60 + n], 48, 2)
    out = upscale("waifu2x", lr).image  # cunet, no denoising
    assert psnr(out, hr) > psnr(bic, hr) + 1.5  # measured 29.0 vs 26.3 dB
    photo_out = upscale("waifu2x", lr, model="upconv_7_photo").image
    assert psnr(photo_out, hr) > psnr(bic, hr) + 1.0  # measured 28.5 dB


def test_realcugan_sharpens_a_photograph_and_beats_bicubic_on_a_drawing():
    hr, lr, bic = low_high(lambda n: photo("astronaut", 256)[40:40 + n, 60:60 + n], 48, 2)
    out = upscale("realcugan", lr).image  # se x2 conservative
    assert grad_energy(out) > 1.3 * grad_energy(bic)  # measured 1.9x (PSNR on photos: 25.5 vs 26.3 dB)
    assert psnr(out, hr) > psnr(bic, hr) - 1.5
    hr, lr, bic = low_high(drawing, 32, 3)
    assert psnr(upscale("realcugan", lr, scale=3).image, hr) > psnr(bic, hr) + 1.0  # measured 23.5 vs 21.2 dB


def test_realsr_beats_bicubic_on_a_camera_like_photograph():
    """RealSR's DF2K weights expect camera blur: on a blurred-then-downscaled photo it beats bicubic
    (on a clean area-downscaled one it over-sharpens: 19.2 vs 24.0 dB, 15x bicubic's gradient energy)."""
    hr = photo("astronaut", 512)[100:228, 140:268]
    lr = cv2.resize(cv2.GaussianBlur(hr, (0, 0), 1.5), (32, 32), interpolation=cv2.INTER_AREA)
    bic = cv2.resize(lr, (128, 128), interpolation=cv2.INTER_CUBIC)
    out = upscale("realsr", lr).image
    assert psnr(out, hr) > psnr(bic, hr) + 0.5  # measured 25.4 vs 24.5 dB
    assert grad_energy(out) > 1.5 * grad_energy(bic)  # measured 2.0x


def test_models_are_real_swaps():
    lr = photo("chelsea", 40)
    outs = {f"{n} {p}": upscale(n, lr, **p).image for n, p in [
        ("realcugan", {}), ("realcugan", {"noise": 0}), ("realcugan", {"noise": 3}), ("realcugan", {"model": "pro", "noise": 0}),
        ("waifu2x", {}), ("waifu2x", {"noise": 3}), ("waifu2x", {"model": "upconv_7_photo"}),
        ("waifu2x", {"model": "upconv_7_anime_style_art_rgb"}), ("realesrgan", {})]}
    keys = list(outs)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            d = np.abs(outs[a].astype(int) - outs[b]).mean()
            assert d > 0.5, (a, b, d)  # measured >= 1.55 levels apart


@pytest.mark.parametrize("name,params,size", [
    ("realcugan", {"scale": 2}, (72, 70)), ("realcugan", {"scale": 3}, (66, 72)),
    ("waifu2x", {"model": "cunet"}, (70, 66)), ("waifu2x", {"model": "upconv_7_photo"}, (72, 72))])
def test_tiles_match_the_untiled_result(name, params, size):
    """Unpadded convolutions + exactly synchronised SE averages: tiling changes only float rounding."""
    img = photo("astronaut", 128)[20:20 + size[0], 30:30 + size[1]]
    whole = upscale(name, img, tile=128, **params)
    tiled = upscale(name, img, tile=32, **params)
    assert whole.info == {"tiles": 1} and tiled.info["tiles"] == 9
    d = np.abs(whole.image.astype(int) - tiled.image)
    assert d.max() <= 1 and d.mean() < 0.01  # measured max 1, mean <= 0.0001


def test_se_sync_is_what_keeps_tiles_consistent():
    img = photo("astronaut", 128)[20:92, 30:102]
    b = build_backend("upscale", "realcugan", {"tile": 32})
    spec = b.net_spec()
    whole, _ = upscale_tiled(img, spec, 128, 1, "t")
    synced, _ = upscale_tiled(img, spec, 32, 1, "t")
    unsynced, _ = upscale_tiled(img, NetSpec(**{**spec.__dict__, "sync_gap": False}), 32, 1, "t")
    assert np.abs(synced - whole).max() < 1e-4  # measured 2e-6
    assert np.abs(unsynced - whole).max() > 0.05  # measured 0.21 (54 grey levels; 2.8 on average)


def test_deterministic_and_thread_count_independent():
    lr = photo("coffee", 48)
    a = upscale("realcugan", lr, tile=32).image
    assert np.array_equal(a, upscale("realcugan", lr, tile=32).image)
    assert np.array_equal(a, upscale("realcugan", lr, tile=32, threads=2).image)  # measured bit-identical


@pytest.mark.parametrize("name,params,listed", [
    ("realsr", {"scale": 2}, "df2k x4"), ("waifu2x", {"scale": 3}, "cunet x2 noise -1/0/1/2/3"),
    ("realcugan", {"model": "pro", "scale": 4}, "pro x3 noise -1/0/3"), ("realcugan", {"scale": 3, "noise": 1}, "se x3 noise -1/0/3"),
    ("realesrgan", {"model": "x4plus", "scale": 2}, "x4plus x4")])
def test_missing_weights_are_a_config_error_that_lists_what_exists(name, params, listed):
    with pytest.raises(ConfigError, match=f"model '.*' has no scale .*; available: .*{listed}"):
        build_backend("upscale", name, params)


@pytest.mark.parametrize("name,params", [("waifu2x", {"model": "cunet2"}), ("realcugan", {"noise": 4}),
                                         ("realcugan", {"scale": 5}), ("realsr", {"tile": 8})])
def test_bad_parameters_are_config_errors(name, params):
    with pytest.raises(ConfigError):
        build_backend("upscale", name, params)


def test_weight_paths_name_the_loaded_files():
    b = build_backend("upscale", "realcugan", {"scale": 3, "noise": 3})
    paths = b.weight_paths()
    assert [p.name for p in paths] == ["REALCUGAN_SE_UP3X_DENOISE3X.param", "REALCUGAN_SE_UP3X_DENOISE3X.bin"]
    assert all(p.is_file() for p in paths)
    assert isinstance(b, RealCUGAN) and b.weight_paths() != build_backend("upscale", "realcugan", {}).weight_paths()
    for name in ("waifu2x", "realsr"):
        assert all(p.is_file() for p in build_backend("upscale", name, {}).weight_paths())


def test_a_missing_weights_package_is_a_stage_error(monkeypatch):
    from harness.errors import StageError
    from harness.stages import sr

    monkeypatch.setitem(sr.PACKAGES, "REALSR", "no_such_weights_pkg")
    monkeypatch.setattr(sr, "load_net", sr.load_net.__wrapped__)  # no cached net
    b = build_backend("upscale", "realsr", {})
    assert not any(p.exists() for p in b.weight_paths())
    with pytest.raises(StageError, match=r"upscale backend 'realsr': .* missing \(install no-such-weights-pkg\)"):
        run_stage(b, photo("chelsea", 32), CTX)
