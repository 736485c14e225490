"""The compiled kernels (``harness.measuring._kernels``) against the numpy code they replace.

numba is optional: without it these tests skip and ``measure`` runs the numpy paths, which
``tests/measuring/test_golden.py`` checks against the reference values either way.
"""

import os

import numpy as np
import pytest
import scipy.fft as sfft

from harness.measuring import compiled, maps
from harness.measuring.compiled import NUMPY_ENV, kernels
from harness.measuring.driver import measure
from harness.measuring.tiles import make_grid
from tests.measuring.golden import cases, tolerance_shares

pytest.importorskip("numba")
if os.environ.get(NUMPY_ENV) == "1":
    pytest.skip(f"{NUMPY_ENV}=1: the whole session runs the numpy paths", allow_module_level=True)


@pytest.fixture
def numpy_path(monkeypatch):
    """``run(fn, ...)``: call ``fn`` with the numpy paths switched on (``HARNESS_NUMPY_MAPS=1``), then off."""
    def run(fn, *a, **kw):
        monkeypatch.setenv(NUMPY_ENV, "1")
        try:
            return fn(*a, **kw)
        finally:
            monkeypatch.delenv(NUMPY_ENV)
    return run


def test_the_numpy_switch_turns_the_kernels_off_and_on_again(numpy_path):
    assert kernels() is not None and kernels().N_CELL_MAPS == 10
    assert numpy_path(kernels) is None
    assert kernels() is compiled._KERNELS


@pytest.mark.parametrize("case", sorted(cases()))
def test_compiled_and_numpy_measurements_agree(numpy_path, case):
    fast = measure(**cases()[case])
    slow = numpy_path(measure, **cases()[case])
    shares = tolerance_shares(slow, fast)
    for metric, (value_share, noise_share, where) in shares.items():
        assert value_share <= 1e-3, f"{case} {metric} [{where}]: {value_share:.2e} of its tolerance apart"
        assert noise_share <= 1e-3, f"{case} {metric}: noise allowances {noise_share:.2e} of the tolerance apart"
    assert np.abs(np.asarray(fast.meta["hue_hist"]) - np.asarray(slow.meta["hue_hist"])).max() < 1e-3


@pytest.mark.parametrize("h,w,tile", [(64, 64, 32), (97, 131, 32), (130, 45, 16), (40, 300, 16), (256, 192, 64)])
def test_cell_maps_kernel_equals_the_numpy_cell_sums(h, w, tile):
    rng = np.random.default_rng(h * w)
    ycc = np.ascontiguousarray((rng.random((3, h, w)) * [[[255]], [[60]], [[60]]] - [[[0]], [[30]], [[30]]])
                               .astype(np.float32))
    means = ycc.mean(axis=(1, 2)).astype(np.float32)
    grid = make_grid(h, w, tile)
    want = np.zeros((maps._N_MAPS + maps._N_GRAD, grid.row_starts.size, grid.col_starts.size))
    maps._pixel_maps(ycc, means, grid, want)
    on = maps._on_grid_cells(ycc, grid)
    k = kernels()
    got = np.zeros((k.N_CELL_MAPS + 3 * len(maps.BLOCK_GRIDS),) + want.shape[1:])
    k.cell_maps(ycc, means, grid.stride, want.shape[1], want.shape[2], np.array(maps.BLOCK_GRIDS), got)
    scale = np.abs(want[maps._KERNEL_ROWS]).max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got[:k.N_CELL_MAPS], want[maps._KERNEL_ROWS], rtol=0, atol=1e-6 * scale.max())
    on_got = got[k.N_CELL_MAPS:].reshape(len(maps.BLOCK_GRIDS), 3, *want.shape[1:]).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(on_got, on, rtol=1e-5, atol=1e-3)
    assert on.sum() > 0


@pytest.mark.parametrize("h,w", [(64, 64), (97, 131), (16, 17), (130, 45), (48, 64)])
def test_hann_kernel_windows_the_spectrum_like_the_image(h, w):
    from harness.measuring.metrics.peaks import _hann2d

    y = (np.random.default_rng(h + w).random((h, w)) * 255).astype(np.float32)
    want = sfft.rfft2((y - y.astype(np.float64).mean()) * _hann2d(h, w).astype(np.float64))
    got = np.empty(want.shape, np.complex64)
    kernels().hann_spectrum(sfft.rfft2(y).astype(np.complex64), w, got)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_distance_kernel_equals_the_numpy_sweeps(numpy_path):
    from harness.measuring.regions import bounded_sq_distance

    rng = np.random.default_rng(3)
    for shape, r in (((2, 40, 57), 8), ((1, 17, 9), 4), ((3, 64, 64), 12)):
        sites = rng.random(shape) > 0.93
        assert np.array_equal(bounded_sq_distance(sites, r), numpy_path(bounded_sq_distance, sites, r))


def test_spectral_kernel_equals_the_numpy_sums(numpy_path):
    from harness.measuring.metrics.spectral import spectral_sums

    for h, w in ((64, 64), (97, 131), (40, 300)):
        spec = sfft.rfft2(np.random.default_rng(w).random((3, h, w)).astype(np.float32) * 100, workers=1)
        bp, radial = spectral_sums(spec, (h, w))
        bp_np, radial_np = numpy_path(spectral_sums, spec, (h, w))
        assert not bp[0].any() and not bp_np[0].any()  # luma's band power comes from its band images
        np.testing.assert_allclose(bp, bp_np, rtol=2e-5)
        np.testing.assert_allclose(radial, radial_np, rtol=2e-5)


@pytest.mark.parametrize("h,w,tile", [(64, 64, 32), (97, 131, 32), (300, 450, 64), (40, 300, 16)])
def test_folded_sub_cells_equal_the_cells_summed_directly(h, w, tile):
    from harness.measuring.tiles import sub_tile

    a = np.random.default_rng(5).random((2, h, w)).astype(np.float32)
    grid = make_grid(h, w, tile)
    fine = make_grid(h, w, sub_tile(grid.tile))
    folded = maps._fold_cells(fine.cell_sums(a), fine, grid)
    assert folded is not None
    np.testing.assert_allclose(folded, grid.cell_sums(a), rtol=1e-6)
