"""inpaint: every backend fills the mask, leaves the rest bit-identical, and is reproducible."""

from __future__ import annotations

import time

import numpy as np
import pytest
from stage_helpers import draw_text, photo

from harness.errors import StageError
from harness.stages import StageContext, build_backend, run_stage

BACKENDS = ["telea", "ns", "biharmonic", "patchmatch"]


def inpaint(name, image, mask, seed=0, **params):
    return run_stage(build_backend("inpaint", name, params), image, StageContext(seed, mask=mask))


@pytest.fixture(scope="module")
def text_on_gradient(gradient):
    img, glyphs = draw_text(gradient, [(8, 50, "TEXT 42")], size=28, fill=(0, 0, 0))
    from scipy import ndimage

    mask = ndimage.binary_dilation(glyphs > 0.5, structure=np.ones((3, 3), bool)).astype(np.float32)
    return img, mask


@pytest.mark.parametrize("name", BACKENDS)
def test_unmasked_pixels_are_bit_identical(name, astronaut):
    mask = np.zeros(astronaut.shape[:2], np.float32)
    mask[100:130, 60:180] = 1.0
    mask[140:150, 60:180] = 0.7  # soft, >= 0.5: filled
    mask[160:170, 60:180] = 0.3  # soft, < 0.5: left alone
    r = inpaint(name, astronaut, mask)
    fill = mask >= 0.5
    assert np.array_equal(r.image[~fill], astronaut[~fill])
    assert r.info == {"filled_px": int(fill.sum())}
    assert np.mean(r.image[fill] != astronaut[fill]) > 0.5  # and the hole really was filled


@pytest.mark.parametrize("name", BACKENDS)
def test_empty_mask_returns_the_image_unchanged(name, astronaut):
    for mask in (None, np.zeros(astronaut.shape[:2], np.float32), np.full(astronaut.shape[:2], 0.49, np.float32)):
        r = inpaint(name, astronaut, mask)
        assert np.array_equal(r.image, astronaut) and r.info == {"filled_px": 0}


@pytest.mark.parametrize("name,max_error", [("telea", 2.0), ("ns", 1.0), ("biharmonic", 1.0), ("patchmatch", 2.0)])
def test_text_on_a_gradient_is_removed(name, max_error, gradient, text_on_gradient):
    img, mask = text_on_gradient
    m = mask >= 0.5
    before = np.abs(img.astype(float) - gradient)[m].mean()  # ~47 grey levels
    after = np.abs(inpaint(name, img, mask).image.astype(float) - gradient)[m].mean()
    assert before > 40 and after < max_error  # measured: telea 1.3, ns 0.5, biharmonic 0.3, patchmatch 0.4


@pytest.mark.parametrize("name", BACKENDS)
def test_text_on_a_photo_is_removed(name):
    clean = photo("coffee")
    img, glyphs = draw_text(clean, [(30, 200, "Espresso")], size=28)
    from scipy import ndimage

    mask = ndimage.binary_dilation(glyphs > 0.5, iterations=2).astype(np.float32)
    m = mask >= 0.5
    before = np.abs(img.astype(float) - clean)[m].mean()
    after = np.abs(inpaint(name, img, mask).image.astype(float) - clean)[m].mean()
    assert after < 0.15 * before  # measured 0.05 (patchmatch) .. 0.09 (telea)


@pytest.mark.parametrize("name", BACKENDS)
def test_inpaint_is_reproducible(name, text_on_gradient, astronaut):
    img, mask = text_on_gradient
    a, b = inpaint(name, img, mask, seed=3).image, inpaint(name, img, mask, seed=3).image
    assert np.array_equal(a, b)


def test_patchmatch_is_seeded_by_ctx_seed(astronaut):
    mask = np.zeros(astronaut.shape[:2], np.float32)
    mask[100:140, 60:180] = 1.0
    a = inpaint("patchmatch", astronaut, mask, seed=1).image
    b = inpaint("patchmatch", astronaut, mask, seed=2).image
    c = inpaint("patchmatch", astronaut, mask, seed=1).image
    assert np.array_equal(a, c) and not np.array_equal(a, b)


def test_biharmonic_is_fast_on_512px():
    img, glyphs = draw_text(photo("chelsea", 512), [(20, y, "LOREM IPSUM DOLOR") for y in range(40, 480, 80)])
    t = time.perf_counter()
    r = inpaint("biharmonic", img, glyphs)
    assert time.perf_counter() - t < 1.0
    assert r.info["filled_px"] == int(glyphs.sum())


def test_mask_shape_mismatch_is_a_stage_error(astronaut):
    with pytest.raises(StageError, match=r"^inpaint backend 'telea': mask shape \(10, 10\) does not match the image"):
        inpaint("telea", astronaut, np.ones((10, 10), np.float32))
