"""The mean 8/16-px luma cell (meta["grid_cells"]) and the paired micro-tiling check built on it."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from harness.comparing.engine import CompareConfig, ToleranceRule, compare_paired
from harness.comparing.grid import grid_checks
from harness.measuring.driver import measure
from harness.measuring.metrics.grid import GRID_PERIODS, MIN_CELLS, grid_cells, mean_cell
from harness.measuring.metrics.noise import BENIGN_LSB


def _pattern(p=8, seed=5, shape=(256, 256)):
    cell = np.random.default_rng(seed).uniform(-1, 1, (p, p))
    return np.tile(cell, (shape[0] // p + 1, shape[1] // p + 1))[: shape[0], : shape[1]]


def test_the_mean_cell_of_a_tiled_pattern_is_the_pattern():
    pat = _pattern()
    y = (100.0 + 3.0 * pat).astype(np.float32)
    cell = mean_cell(y, 8)
    np.testing.assert_allclose(cell, 3.0 * (pat[:8, :8] - pat[:8, :8].mean()), atol=1e-4)
    # sizes that are not a multiple: the top-left whole cells; too few cells: none
    np.testing.assert_allclose(mean_cell(y[:203, :250], 8), cell, atol=1e-4)
    assert mean_cell(y[: 8 * MIN_CELLS - 1], 8) is None


def test_content_without_a_period_averages_down():
    y = np.random.default_rng(0).normal(128, 20, (512, 512)).astype(np.float32)
    cell = mean_cell(y, 8)
    # each phase mean holds 4096 pixels: std 20 / 64
    assert float(np.sqrt(np.mean(cell**2))) == pytest.approx(20 / 64, rel=0.15)


def test_the_8px_cell_comes_from_the_16px_one_and_agrees_with_a_direct_mean():
    y = (np.random.default_rng(1).normal(128, 20, (256, 320)) + 2 * _pattern(shape=(256, 320))).astype(np.float32)
    cells = grid_cells(SimpleNamespace(y=y))["grid_cells"]
    assert sorted(cells) == sorted(str(p) for p in GRID_PERIODS)
    np.testing.assert_allclose(cells["8"], mean_cell(y, 8).ravel(), atol=2e-5)
    assert len(cells["16"]) == 256
    # too small for 16-px cells: the 8-px cell alone
    small = grid_cells(SimpleNamespace(y=y[:40, :40]))["grid_cells"]
    assert list(small) == ["8"]


def _img(seed=0):
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:356, 150:406])


def test_a_one_lsb_grid_fails_with_its_own_power_and_jitter_passes():
    img = _img()
    mb = measure(img)
    pat = np.rint(_pattern())  # the +-1 grid: every phase -1, 0 or +1
    grid = np.clip(img + pat[..., None], 0, 255).astype(np.uint8)
    checks = {c.slice: c for c in compare_paired(mb, measure(grid)) if c.metric == "grid"}
    power = float(np.mean((pat[:8, :8] - pat[:8, :8].mean()) ** 2))
    assert checks["ch=Y period=8"].status == "fail"
    # its own power, less what clipping at 0/255 (the astronaut's suit) takes off
    assert abs(checks["ch=Y period=8"].value) == pytest.approx(power, rel=0.1)
    assert checks["ch=Y period=16"].value == pytest.approx(checks["ch=Y period=8"].value, rel=0.02)  # 2 x 2
    rng = np.random.default_rng(3)
    jit = np.clip(img.astype(np.int16) + 2 * rng.integers(0, 2, img.shape) - 1, 0, 255).astype(np.uint8)
    jc = {c.slice: c for c in compare_paired(mb, measure(jit)) if c.metric == "grid"}
    assert all(c.status == "pass" and c.severity < 0.1 for c in jc.values())


def test_the_allowance_is_a_new_grid_of_half_an_lsb_plus_the_noise_floor():
    img = _img()
    mb = measure(img)
    ((name, value, tol), (_, _, tol16)) = grid_checks(mb.meta, mb.meta, CompareConfig())
    assert name == "ch=Y period=8" and value == 0.0
    bias = 2 * BENIGN_LSB**2 * 64 / (256 * 256)
    assert tol == pytest.approx(0.25 + bias + 4 * math.sqrt(2) * bias * math.sqrt(2 / 63))
    assert tol16 > tol  # fewer pixels a phase


def test_swapping_the_sides_negates_and_rules_override():
    img = _img()
    grid = np.clip(img + 2 * np.rint(_pattern())[..., None], 0, 255).astype(np.uint8)
    mb, mc = measure(img), measure(grid)
    ab = grid_checks(mb.meta, mc.meta, CompareConfig())
    ba = grid_checks(mc.meta, mb.meta, CompareConfig())
    for (s1, v1, t1), (s2, v2, t2) in zip(ab, ba):
        assert s1 == s2 and v1 == pytest.approx(-v2) and t1 == pytest.approx(t2)
    loose = CompareConfig(rules=(ToleranceRule("grid", slice="*period=8", abs_tol=5.0),))
    by = {c.slice: c for c in compare_paired(mb, mc, loose) if c.metric == "grid"}
    assert by["ch=Y period=8"].status == "pass" and by["ch=Y period=16"].status == "fail"


def test_cells_missing_on_a_side_give_no_check_and_malformed_ones_an_error():
    mb = measure(_img())
    old = type(mb)(mb.metrics, {k: v for k, v in mb.meta.items() if k != "grid_cells"})
    assert all(c.metric != "grid" for c in compare_paired(old, mb))  # a baseline baked before the cells
    bad = type(mb)(mb.metrics, mb.meta | {"grid_cells": {"8": [0.0] * 63, "16": mb.meta["grid_cells"]["16"]}})
    by = {c.slice: c for c in compare_paired(bad, mb) if c.metric == "grid"}
    assert by["ch=Y period=8"].status == "error" and by["ch=Y period=16"].status == "pass"
