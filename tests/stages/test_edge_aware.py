"""upscale backend ``edge_aware`` (self-guided; called ``guided`` until issue 13): led by a map of
its own input's edges (Canny, Sobel, segments), sharper than bicubic at steps, no ringing, smooth
where the map has no edge."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from stage_helpers import photo, psnr

from harness.errors import ConfigError
from harness.stages import StageContext, build_backend, run_stage
from harness.stages.edge_aware import EDGE_MAPS as GUIDES, guidance_cuts
from stage_helpers import rise_width

CTX = StageContext(0)


def upscale(name, image, ctx=CTX, **params):
    return run_stage(build_backend("upscale", name, params), image, ctx)


def ringing_overshoot(out: np.ndarray, lo: int, hi: int) -> int:
    """How far (grey levels) the output strays outside the two plateau levels of a step seam."""
    o = out.astype(int)
    return max(int(o.max()) - hi, lo - int(o.min()), 0)


@pytest.fixture(scope="module")
def step():
    """An inpaint-like seam: a flat fill (60) meeting a flat region (180) along a vertical line."""
    s = np.full((64, 64, 3), 60, np.uint8)
    s[:, 32:] = 180
    return s


@pytest.fixture(scope="module")
def lowres():
    hr = photo("astronaut", 256)
    return hr, cv2.resize(hr, (128, 128), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("guide", GUIDES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_scale_times_the_input(guide, scale):
    img = photo("camera", 40)[:30]
    out = upscale("edge_aware", img, edges=guide, scale=scale).image
    assert out.shape == (30 * scale, 40 * scale, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("guide", GUIDES)
@pytest.mark.parametrize("scale", [2, 4])
def test_a_step_edge_stays_sharper_than_bicubic_without_overshoot(step, guide, scale):
    row = slice(20 * scale, 45 * scale)
    bic = upscale("bicubic", step, scale=scale).image
    out = upscale("edge_aware", step, edges=guide, scale=scale).image
    unclamped = upscale("edge_aware", step, edges=guide, scale=scale, clamp=False).image
    assert rise_width(out[10, row, 0]) < 0.6 * rise_width(bic[10, row, 0])  # measured 0.80 px vs 1.75 (x2), 3.09 (x4)
    assert ringing_overshoot(out, 60, 180) == 0
    assert ringing_overshoot(unclamped, 60, 180) == 0  # nothing mixed across the cut, not even a negative lobe
    assert ringing_overshoot(bic, 60, 180) >= 10  # measured 13


def test_a_blurred_step_gets_a_steeper_centre_than_bicubic(step):
    soft = cv2.GaussianBlur(step, (0, 0), 1.0)
    bic = upscale("bicubic", soft).image[10, :, 0].astype(int)
    for guide in GUIDES:
        out = upscale("edge_aware", soft, edges=guide).image[10, :, 0].astype(int)
        assert np.abs(np.diff(out)).max() > 1.4 * np.abs(np.diff(bic)).max()  # measured 40-44 vs 24 levels


@pytest.mark.parametrize("guide", GUIDES)
def test_no_texture_leaks_into_a_flat_fill(guide):
    """A flat inpainted patch in grass: texture ringing into the fill's first 2 px (x2)."""
    img = photo("grass", 128).copy()
    img[32:96, 32:96] = 120
    band = np.ones((128, 128), bool)
    band[4:-4, 4:-4] = False

    def leak(name, **params):
        fill = upscale(name, img, **params).image[64:192, 64:192].astype(float)
        return float(np.abs(fill[band] - 120).mean())

    assert leak("edge_aware", edges=guide) < 0.75 * leak("bicubic")  # measured 1.25-1.33 vs 2.01
    assert leak("edge_aware", edges=guide) < 0.75 * leak("lanczos")  # lanczos: 2.73


def test_each_guide_gives_its_own_output(lowres):
    _, lr = lowres
    outs = {}
    for kind in GUIDES:
        r = upscale("edge_aware", lr, edges=kind)
        assert r.info["edges"] == kind
        assert 0.01 < r.info["edge_density"] < 0.3  # measured canny 0.10, sobel 0.07, segments 0.16
        outs[kind] = r.image
    assert "low" in upscale("edge_aware", lr, edges="canny").info
    assert upscale("edge_aware", lr, edges="segments").info["segments"] > 10
    for a in GUIDES:
        for b in GUIDES:
            if a < b:
                assert not np.array_equal(outs[a], outs[b]), (a, b)


def test_explicit_thresholds_change_the_map(lowres):
    _, lr = lowres
    dense = guidance_cuts(lr, "canny", 20.0, 40.0)
    sparse = guidance_cuts(lr, "canny", 300.0, 600.0)
    density = [float(ch.mean() + cv.mean()) for ch, cv, _ in (dense, sparse)]
    assert density[0] > 2 * density[1]
    coarse = upscale("edge_aware", lr, edges="segments", segment_scale=2000.0).info["segments"]
    fine = upscale("edge_aware", lr, edges="segments", segment_scale=20.0).info["segments"]
    assert coarse < fine


def test_smooth_regions_stay_smooth(gradient):
    bic = cv2.resize(gradient, (256, 256), interpolation=cv2.INTER_CUBIC).astype(int)
    for kind in GUIDES:
        out = upscale("edge_aware", gradient, edges=kind).image.astype(int)
        assert np.abs(out - bic).max() <= 1  # canny / sobel find no edge; segments cut at steps of <= 2 levels


def test_stays_close_to_bicubic_on_a_photo(lowres):
    hr, lr = lowres
    bic = cv2.resize(lr, (256, 256), interpolation=cv2.INTER_CUBIC)
    for kind in GUIDES:
        g = upscale("edge_aware", lr, edges=kind).image
        assert psnr(g, hr) > psnr(bic, hr) - 1.0  # measured 27.1-27.4 vs 27.8 dB (sharper edges cost a little)
        assert psnr(g, bic) > 30  # measured 33.1-33.6 dB


def test_fast_and_deterministic():
    img = photo("astronaut", 256)
    b = build_backend("upscale", "edge_aware", {})
    t = time.perf_counter()
    first = run_stage(b, img, CTX).image
    elapsed = time.perf_counter() - t
    assert elapsed < 2.5  # measured 0.1-0.4 s on one core (256x256 -> 512x512)
    assert np.array_equal(run_stage(b, img, CTX).image, first)


@pytest.mark.parametrize("params,match", [({"edges": "edges"}, "edges"), ({"scale": 5}, "scale"),
                                          ({"guide": "stage:source"}, "unknown parameter 'guide'"),
                                          ({"scale": 1}, "scale"), ({"low": 80.0, "high": 40.0}, "above high"),
                                          ({"min_size": 0}, "min_size"), ({"segment_scale": 0.0}, "segment_scale"),
                                          ({"high": -1.0}, "high"), ({"radius": 2}, "radius"),
                                          ({"clamp": "yes"}, "clamp")])
def test_bad_params_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build_backend("upscale", "edge_aware", params)
