"""Codec metrics: blockiness (block-edge energy in just-visible units) and detail (gradient power)."""

import numpy as np
import pytest
from scipy import ndimage

from harness.measuring.context import prepare
from harness.measuring.driver import measure
from harness.measuring.metrics.codec import (
    DETAIL_SCALE,
    blockiness,
    blockiness_jnd,
    detail,
)
from harness.measuring.visibility import BLOCK_JND, BLOCK_KNEE, block_threshold


def _grey(y):
    return np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _texture(n=256, amp=20.0, seed=0, blur=1.0):
    rng = np.random.default_rng(seed)
    t = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), blur)
    return 128.0 + amp * t / t.std()


def _block_offsets(n, rms, block=8, seed=1):
    rng = np.random.default_rng(seed)
    k = n // block
    return np.kron(rng.normal(0, rms, (k, k)), np.ones((block, block)))


def test_a_block_pattern_adds_twice_its_offset_energy_across_the_block_edges():
    # float input, no quantisation: block offsets of RMS o add 2 o² across 8-px edges (and 16-px ones)
    y = _texture(amp=10.0)
    o = 3.0
    base = measure(np.repeat(y[..., None], 3, axis=2) / 255.0)["blockiness"]
    blocky = measure(np.repeat((y + _block_offsets(256, o))[..., None], 3, axis=2) / 255.0)["blockiness"]
    ctx = prepare(np.repeat(y[..., None], 3, axis=2) / 255.0)
    d = ctx.diffs
    e_off = (d.total("grad_y")[0] - d.total("grid8_y")[0]) / (d.n_all[0] - d.n_grid[8][0])
    want = 2 * o * o / block_threshold(e_off)
    for g in ("8", "16"):
        delta = blocky.get(f"ch=Y grid={g}") - base.get(f"ch=Y grid={g}")
        assert delta == pytest.approx(want, rel=0.15)
    assert abs(base.get("ch=Y grid=8")) < 0.3  # a texture with no preferred grid reads about 0


def test_a_16px_pattern_shows_on_the_16px_grid_only():
    y = _texture(amp=10.0)
    m = measure(_grey(y + _block_offsets(256, 3.0, block=16)))["blockiness"]
    assert m.get("ch=Y grid=16") > 2.0
    assert m.get("ch=Y grid=16") > 1.8 * m.get("ch=Y grid=8")  # half the 8-px edges are 16-px edges


def test_chroma_blocks_show_in_the_chroma_slices():
    y = _texture(amp=10.0)
    img = np.repeat(y[..., None], 3, axis=2)
    img[..., 2] += _block_offsets(256, 4.0, block=16)  # blue blocks: Cb steps on the 16-px grid
    m = measure(np.clip(np.rint(img), 0, 255).astype(np.uint8))["blockiness"]
    assert m.get("ch=Cb grid=16") > 1.0
    assert abs(measure(_grey(y))["blockiness"].get("ch=Cb grid=16")) < 0.1


def test_blockiness_is_in_units_of_the_block_threshold_and_masked_by_texture():
    assert block_threshold(0.0) == pytest.approx(BLOCK_JND)
    assert block_threshold(BLOCK_KNEE) == pytest.approx(BLOCK_JND)
    assert block_threshold(8 * BLOCK_KNEE) == pytest.approx(BLOCK_JND * 8**0.7)
    v, std, bias = blockiness_jnd(np.array([BLOCK_JND + 10.0]), np.array(1e4), np.array([10.0]), np.array(7e4), 1.25)
    assert v[0] == pytest.approx(1.0)  # one just-visible block edge over a flat interior
    assert std[0] > 0 and bias[0] >= 0


def test_a_plain_contrast_change_of_a_strong_texture_barely_moves_blockiness():
    y = _texture(amp=40.0, blur=0.6)
    a = measure(_grey(y))["blockiness"]
    b = measure(_grey(128 + 0.95 * (y - 128)))["blockiness"]
    cmp = np.abs(b.values - a.values) / (1.0 + 4 * np.sqrt(2) * np.minimum(a.std, b.std))
    assert cmp.max() < 0.5


def test_blockiness_noise_floor_covers_fresh_jitter():
    """The derived std bounds the scatter of fresh +-1 LSB jitter, and not by a silly margin."""
    y = _texture(amp=30.0, blur=0.7)
    rng = np.random.default_rng(3)
    draws = np.array([measure(_grey(y + rng.integers(-1, 2, y.shape)))["blockiness"].values for _ in range(24)])
    m = measure(_grey(y))["blockiness"]
    ratio = draws.std(axis=0) / m.std
    assert np.median(ratio) < 1.0 and ratio.max() < 1.3  # an upper bound (jitter's std is 0.82, not 1.25)
    assert np.median(ratio) > 0.25


def test_detail_of_white_noise_is_its_variance_and_chroma_tiles_see_colour_loss():
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 4.0, (128, 128))
    m = measure(np.repeat((128 + noise)[..., None], 3, axis=2) / 255.0)["detail"]
    assert m.get("ch=Y") == pytest.approx(16.0, rel=0.05)  # DETAIL_SCALE normalises white noise to its variance
    assert DETAIL_SCALE == 4.0
    assert m.get("ch=Cb") == pytest.approx(0.0, abs=1e-6)
    colour = np.full((128, 128, 3), 128.0)
    colour[..., 0] += noise  # red grain: Cr detail everywhere
    flat = colour.copy()
    flat[32:96, 32:96, 0] = 128.0  # the grain removed from a central square
    a, b = measure(colour / 255.0)["detail"], measure(flat / 255.0)["detail"]
    assert a.slices == b.slices and "tile=r1c1 ch=Cr" in a.slices and "tile=r1c1 ch=Y" not in a.slices
    assert b.get("tile=r2c2 ch=Cr") < 0.1 * a.get("tile=r2c2 ch=Cr")
    assert b.get("tile=r0c0 ch=Cr") > 0.8 * a.get("tile=r0c0 ch=Cr")


def test_codec_families_name_every_slice():
    ctx = prepare(np.random.default_rng(5).integers(0, 256, (96, 128, 3), dtype=np.uint8), tile=32)
    blk = blockiness(ctx)["blockiness"]
    assert blk.slices[:6] == ("ch=Y grid=8", "ch=Y grid=16", "ch=Cb grid=8", "ch=Cb grid=16", "ch=Cr grid=8",
                              "ch=Cr grid=16")
    assert blk.slices[6] == "tile=r0c0 ch=Y grid=8" and blk.slices[-1] == "tile=r4c6 ch=Y grid=16"
    assert len(blk) == 6 + 2 * 5 * 7
    det = detail(ctx)["detail"]
    assert det.slices[:3] == ("ch=Y", "ch=Cb", "ch=Cr") and len(det) == 3 + 2 * 35
    assert np.all(det.std > 0) and np.all(det.bias > 0)
