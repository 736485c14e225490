"""upscale backend ``guided``: follows a full-resolution guide image (He's local linear model).

Analytic: the box-filter implementation equals a slow direct one; a step the input cannot resolve
comes out as sharp as the guide's, at the input's levels; a flat guide gives the base upsampler
exactly; nothing of the guide inside the excluded region reaches the output.  Measured: PSNR
against the full-resolution truth, bicubic vs self-guided (``edge_aware``) vs guided by the source
(``python tests/stages/test_guided.py`` prints the table).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from stage_helpers import photo, psnr

from harness.errors import ConfigError, StageError
from harness.stages import StageContext, build_backend, run_stage
from harness.stages.guide import Guide
from harness.stages.guided import box_mean, guided_upsample, local_gains
from stage_helpers import rise_width

SOURCE = "stage:source"


def upscale(image, guide=None, mask=None, name="guided", **params):
    if name == "guided":
        params.setdefault("guide", SOURCE)
    ctx = StageContext(0, mask=mask, guide=guide)
    return run_stage(build_backend("upscale", name, params), image, ctx)


def bicubic(image, scale=2):
    """The backend's base upsampler: OpenCV bicubic on float levels 0..1, rounded to uint8."""
    h, w = image.shape[:2]
    out = cv2.resize(image.astype(np.float32) / 255, (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.rint(out.astype(np.float64) * 255), 0, 255).astype(np.uint8)


# --- the implementation against a slow direct reference ----------------------------------------------------------

def _windows(h, w, r):
    for y in range(h):
        for x in range(w):
            yield y, x, slice(max(y - r, 0), min(y + r + 1, h)), slice(max(x - r, 0), min(x + r + 1, w))


def test_box_mean_is_the_mean_over_the_clipped_window():
    a = np.random.default_rng(1).normal(size=(9, 7, 2))
    got = box_mean(a, 2)
    for y, x, sy, sx in _windows(9, 7, 2):
        np.testing.assert_allclose(got[y, x], a[sy, sx].reshape(-1, 2).mean(axis=0), rtol=0, atol=1e-12)


def test_local_gains_are_the_ridge_least_squares_fit_of_each_window():
    rng = np.random.default_rng(2)
    low, p = rng.random((8, 9, 3)), rng.random((8, 9, 3))
    eps = 1e-3
    got = local_gains(low, p, 2, eps)
    for y, x, sy, sx in _windows(8, 9, 2):
        L, P = low[sy, sx].reshape(-1, 3), p[sy, sx].reshape(-1, 3)
        Lc, Pc = L - L.mean(0), P - P.mean(0)
        cov, cross = Lc.T @ Lc / len(L), Lc.T @ Pc / len(L)
        want = np.linalg.solve(cov + eps * np.eye(3), cross).T  # (channel, guide channel)
        np.testing.assert_allclose(got[y, x], want, rtol=0, atol=1e-9)


def _direct_guided(image, guide, s, r, eps, exclude):
    """He's model written out per window, with the exclusion rule of the module doc."""
    h, w = image.shape[:2]
    H, W = h * s, w * s
    p = cv2.resize(image.astype(np.float32) / 255, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    g = guide.astype(np.float32) / 255
    low = cv2.resize(cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA), (W, H),
                     interpolation=cv2.INTER_CUBIC).astype(np.float64)
    ex_y, ex_x = np.nonzero(exclude)
    gains, usable = {}, {}
    for y, x, sy, sx in _windows(H, W, r):
        L, P = low[sy, sx].reshape(-1, 3), p[sy, sx].reshape(-1, 3)
        Lc, Pc = L - L.mean(0), P - P.mean(0)
        gains[y, x] = np.linalg.solve(Lc.T @ Lc / len(L) + eps * np.eye(3), Lc.T @ Pc / len(L)).T
        # chessboard distance from the window to the nearest excluded pixel must exceed 3 s
        dy = np.maximum(np.maximum(sy.start - ex_y, ex_y - (sy.stop - 1)), 0)
        dx = np.maximum(np.maximum(sx.start - ex_x, ex_x - (sx.stop - 1)), 0)
        usable[y, x] = not len(ex_y) or int(np.maximum(dy, dx).min()) > 3 * s
    q = p.copy()
    for y, x, sy, sx in _windows(H, W, r):
        ks = [(ky, kx) for ky in range(sy.start, sy.stop) for kx in range(sx.start, sx.stop) if usable[ky, kx]]
        if ks:
            a = np.mean([gains[k] for k in ks], axis=0)
            q[y, x] = p[y, x] + a @ (g[y, x] - low[y, x])
    return q * 255


def test_guided_upsample_equals_the_direct_per_window_reference():
    rng = np.random.default_rng(3)
    guide = cv2.GaussianBlur(rng.integers(0, 256, (24, 28, 3), dtype=np.uint8), (0, 0), 1.0)
    image = cv2.resize(guide, (14, 12), interpolation=cv2.INTER_AREA)
    image = np.clip(image.astype(int) + rng.integers(-6, 7, image.shape), 0, 255).astype(np.uint8)
    exclude = np.zeros((24, 28), bool)
    exclude[2:5, 20:23] = True
    got, share = guided_upsample(image, guide, 2, 2, 1e-3, exclude)
    want = _direct_guided(image, guide, 2, 2, 1e-3, exclude)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert 0.2 < share < 0.8  # a 3x3 exclusion with its 6 + 2 px margins covers much of a 24x28 image


# --- analytic properties ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4])
def test_a_step_the_input_cannot_resolve_is_as_sharp_as_the_guides(scale):
    """The guide steps between two output columns inside one input pixel; the input (the guide's
    area-downsampled image, its levels remapped 0/255 -> 60/180) only sees a blend there."""
    n = 16 * scale
    edge = 8 * scale + scale // 2  # mid-pixel: unresolvable at the input's resolution
    guide = np.zeros((n, n, 3), np.uint8)
    guide[:, edge:] = 255
    image = np.rint(60 + cv2.resize(guide, (16, 16), interpolation=cv2.INTER_AREA) * (120 / 255)).astype(np.uint8)
    out = upscale(image, Guide(SOURCE, guide), scale=scale).image
    row = out[n // 2, :, 0].astype(int)
    assert rise_width(row) <= rise_width(guide[n // 2, :, 0]) + 0.05  # measured: both 0.8 px (one sample)
    assert rise_width(bicubic(image, scale)[n // 2, :, 0]) >= 1.4 * scale  # bicubic: measured 2.9 px (x2), 6.0 (x4)
    assert int(np.argmax(np.diff(row))) == edge - 1  # the jump sits where the guide's does
    assert abs(row[edge - 3] - 60) <= 1 and abs(row[edge + 2] - 180) <= 1  # at the input's levels, not the guide's


def test_a_flat_guide_gives_the_base_upsampler_exactly():
    lr = photo("astronaut", 128)
    r = upscale(lr, Guide(SOURCE, np.full((256, 256, 3), 97, np.uint8)))
    assert np.array_equal(r.image, bicubic(lr))
    uint8_cubic = cv2.resize(lr, (256, 256), interpolation=cv2.INTER_CUBIC)  # OpenCV's own uint8 rounding
    assert np.abs(r.image.astype(int) - uint8_cubic).max() <= 1
    assert r.info["guided_share"] == 1.0 and r.info["guide"] == SOURCE


@pytest.fixture(scope="module")
def masked():
    """A photo, its half-size input, and a patterned guide whose centre square is excluded."""
    hr = photo("coffee", 192)
    lr = cv2.resize(hr, (96, 96), interpolation=cv2.INTER_AREA)
    exclude = np.zeros((192, 192), bool)
    exclude[80:112, 80:112] = True
    other = hr.copy()
    other[80:112, 80:112] = np.indices((32, 32)).sum(0)[..., None] % 2 * 255  # a checkerboard where it is excluded
    return hr, lr, exclude, other


def test_the_excluded_region_pulls_no_guide_content_into_the_output(masked):
    hr, lr, exclude, other = masked
    a = upscale(lr, Guide(SOURCE, hr, exclude)).image
    b = upscale(lr, Guide(SOURCE, other, exclude)).image
    assert np.array_equal(a, b)  # what the guide shows inside the exclusion reaches no output pixel
    assert np.array_equal(a[80:112, 80:112], bicubic(lr)[80:112, 80:112])  # inside: the base upsampler
    free = upscale(lr, Guide(SOURCE, other)).image  # not excluded: the checkerboard does come through
    assert np.abs(free[80:112, 80:112].astype(int) - a[80:112, 80:112]).mean() > 20


def test_the_pipelines_mask_is_left_out_like_an_exclusion(masked):
    """``ctx.mask`` (input resolution: what the pipeline removed) excludes its pixels of the guide."""
    hr, lr, exclude, other = masked
    mask = np.zeros((96, 96), np.float32)
    mask[40:56, 40:56] = 1.0
    by_mask = upscale(lr, Guide(SOURCE, other), mask=mask)
    assert np.array_equal(by_mask.image, upscale(lr, Guide(SOURCE, hr, exclude)).image)
    assert by_mask.info["excluded_share"] == round(32 * 32 / 192 ** 2, 6)
    with pytest.raises(StageError, match=r"mask shape \(48, 48\) does not match the image \(96, 96\)"):
        upscale(lr, Guide(SOURCE, hr), mask=mask[:48, :48])


# --- sizes, configuration --------------------------------------------------------------------------------------

def test_a_larger_guide_is_area_downsampled_and_a_smaller_or_misshapen_one_refused():
    hr = photo("rocket", 256)
    lr = cv2.resize(hr, (64, 64), interpolation=cv2.INTER_AREA)
    r = upscale(lr, Guide(SOURCE, hr))  # 256 for a 128 output
    assert r.info["guide_resized_from"] == "256x256"
    half = cv2.resize(hr, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.array_equal(r.image, upscale(lr, Guide(SOURCE, half)).image)
    with pytest.raises(StageError, match=r"guide 'stage:source' is 96x96, the output 128x128: .* smaller one"):
        upscale(lr, Guide(SOURCE, hr[:96, :96]))
    with pytest.raises(StageError, match=r"is 256x200, the output 128x128"):
        upscale(lr, Guide(SOURCE, hr[:200]))
    with pytest.raises(StageError, match=r"must be \(H, W, 3\) uint8"):
        upscale(lr, Guide(SOURCE, half.astype(np.float32)))
    with pytest.raises(StageError, match=r"exclusion \(10, 10\) does not match its image \(128, 128\)"):
        upscale(lr, Guide(SOURCE, half, np.zeros((10, 10), bool)))


def test_without_a_guide_in_the_context_it_is_a_stage_error():
    with pytest.raises(StageError, match="no guide image in the context"):
        upscale(photo("rocket", 32), None)
    with pytest.raises(StageError, match="the context's guide is 'stage:other'"):
        upscale(photo("rocket", 32), Guide("stage:other", photo("rocket", 64)))


@pytest.mark.parametrize("params,match", [
    ({}, "parameter 'guide' is required, one of: stage:source .* use backend 'edge_aware'"),
    ({"guide": "stage:denoise"}, "guide 'stage:denoise' names an unknown stage 'denoise'; allowed: stage:source"),
    ({"guide": "source"}, "guide 'source' is not 'stage:<name>'"),
    ({"guide": "stage:source", "eps": 0.0}, "eps"), ({"guide": "stage:source", "radius": -1}, "radius"),
    ({"guide": "stage:source", "scale": 5}, "scale"), ({"guide": "stage:source", "edges": "canny"}, "edges")])
def test_bad_params_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build_backend("upscale", "guided", params)


def test_fast_and_deterministic():
    import time

    hr = photo("astronaut", 512)
    lr = cv2.resize(hr, (256, 256), interpolation=cv2.INTER_AREA)
    t = time.perf_counter()
    first = upscale(lr, Guide(SOURCE, hr)).image
    assert time.perf_counter() - t < 3.0  # measured 0.5-0.6 s on one core (256x256 -> 512x512)
    assert np.array_equal(upscale(lr, Guide(SOURCE, hr)).image, first)


# --- measured: PSNR against the full-resolution truth ----------------------------------------------------------

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def measure(name: str) -> dict[str, float]:
    """PSNR (dB) of 256 -> 512 upscales against the 512 px truth; the input is the truth downsized
    (area), as a vector's input is its photograph fitted down.  ``grey guide``: a luma-only
    capture (colour must come from the input); ``noisy guide``: the truth plus N(0, 8 levels)."""
    truth = photo(name, 512)
    lr = cv2.resize(truth, (256, 256), interpolation=cv2.INTER_AREA)
    grey = np.repeat(cv2.cvtColor(truth, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    noisy = np.clip(truth + np.random.default_rng(0).normal(0, 8, truth.shape), 0, 255).astype(np.uint8)
    out = {"bicubic": upscale(lr, name="bicubic").image, "edge_aware": upscale(lr, name="edge_aware").image}
    for label, g in (("guided", truth), ("grey guide", grey), ("noisy guide", noisy)):
        out[label] = upscale(lr, Guide(SOURCE, g)).image
    out["noisy, eps 1e-3"] = upscale(lr, Guide(SOURCE, noisy), eps=1e-3).image
    return {k: psnr(v, truth) for k, v in out.items()}


@pytest.mark.parametrize("name", PHOTOS[:3])
def test_a_guide_brings_back_what_bicubic_and_self_guidance_cannot(name):
    db = measure(name)
    assert db["guided"] > db["bicubic"] + 12  # measured +14.9 to +18.1 dB
    assert db["grey guide"] > db["bicubic"] + 5  # measured +9.9 to +12.2 dB
    assert abs(db["edge_aware"] - db["bicubic"]) < 2  # self-guided: measured -0.7 to -1.3 dB (sharper edges)
    assert db["noisy, eps 1e-3"] > db["noisy guide"]  # eps keeps more of the guide's noise out


if __name__ == "__main__":
    rows = {name: measure(name) for name in PHOTOS}
    cols = list(next(iter(rows.values())))
    print(f"{'photo':10s}" + "".join(f"{c:>17s}" for c in cols))
    for name, db in rows.items():
        print(f"{name:10s}" + "".join(f"{db[c]:17.2f}" for c in cols))
