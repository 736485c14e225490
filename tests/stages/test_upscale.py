"""upscale: shapes, Real-ESRGAN (real weights) is plausible.  The guided upscaler: test_guided.py; the
self-guided one: test_edge_aware.py."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from stage_helpers import photo, psnr

from harness.stages import StageContext, build_backend, run_stage

CTX = StageContext(0)
RESAMPLERS = ["lanczos", "bicubic", "nearest", "edge_aware"]


def upscale(name, image, ctx=CTX, **params):
    return run_stage(build_backend("upscale", name, params), image, ctx)


def grad_energy(x: np.ndarray) -> float:
    return float(np.mean(np.diff(x.astype(float).mean(axis=2), axis=1) ** 2))


@pytest.mark.parametrize("name", RESAMPLERS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_shape(name, scale):
    img = photo("camera", 40)[:30]
    out = upscale(name, img, scale=scale).image
    assert out.shape == (30 * scale, 40 * scale, 3) and out.dtype == np.uint8


def test_nearest_repeats_pixels(astronaut):
    out = upscale("nearest", astronaut[:50, :60], scale=3).image
    assert np.array_equal(out, np.repeat(np.repeat(astronaut[:50, :60], 3, axis=0), 3, axis=1))


@pytest.fixture(scope="module")
def lowres():
    hr = photo("astronaut", 256)
    return hr, cv2.resize(hr, (128, 128), interpolation=cv2.INTER_AREA)


def test_realesrgan_produces_a_plausible_upscale(lowres):
    hr, lr = lowres
    t = time.perf_counter()
    r = upscale("realesrgan", lr)  # animavideov3 x2
    elapsed = time.perf_counter() - t
    out = r.image
    bic = cv2.resize(lr, (256, 256), interpolation=cv2.INTER_CUBIC)
    assert out.shape == (256, 256, 3) and r.info == {"tiles": 1}
    assert elapsed < 5.0  # measured 0.1-0.4 s with one thread
    assert psnr(out, bic) > 20  # measured 25.4 dB
    assert psnr(out, hr) > 22  # measured 25.6 dB
    assert grad_energy(out) > 1.5 * grad_energy(bic)  # it sharpens (measured 2.3x)
    assert abs(float(out.mean()) - float(lr.mean())) < 3
    assert np.array_equal(upscale("realesrgan", lr).image, out)  # deterministic


def test_realesrgan_tiles_join_without_visible_seams(lowres):
    _, lr = lowres
    whole = upscale("realesrgan", lr, tile=256)
    tiled = upscale("realesrgan", lr, tile=48)
    assert tiled.info == {"tiles": 9}
    d = np.abs(whole.image.astype(int) - tiled.image)
    assert d.mean() < 0.01 and d.max() <= 2  # measured 0.0005, 1 (16 px overlap)


@pytest.mark.parametrize("model,scale,size", [("animavideov3", 3, 64), ("animavideov3", 4, 64), ("x4plus", 4, 40)])
def test_realesrgan_other_models(model, scale, size):
    lr = photo("chelsea", size)
    out = upscale("realesrgan", lr, model=model, scale=scale).image
    assert out.shape == (size * scale, size * scale, 3)
    assert psnr(out, cv2.resize(lr, (size * scale,) * 2, interpolation=cv2.INTER_CUBIC)) > 20
