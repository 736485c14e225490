"""The low-memory path of large images: the same values as the whole-image path, and a bounded peak."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from harness.measuring import sizecache
from harness.measuring.driver import measure
from harness.measuring.memory import float32_copy_bytes, peak_compare_rss, synthetic_pair
from harness.measuring.sizecache import LARGE_ENV, is_large, per_size, size_scope


def _flat(m):
    return {k: (v.slices, v.values, v.std, v.bias) for k, v in m.metrics.items()}, m.meta


def _both_paths(monkeypatch, *args, **kw):
    monkeypatch.delenv(LARGE_ENV, raising=False)
    whole = measure(*args, **kw)
    monkeypatch.setenv(LARGE_ENV, "0")  # every image is large: the streamed path
    assert is_large(*np.asarray(args[0]).shape[:2])
    streamed = measure(*args, **kw)
    return _flat(whole), _flat(streamed)


@pytest.mark.parametrize("numpy_maps, mask_box", [("0", (100, 180, 60, 150)), ("1", (100, 180, 60, 150)),
                                                   ("0", (20, 280, 10, 250))])
def test_large_path_gives_the_whole_image_values_exactly(monkeypatch, numpy_maps, mask_box):
    # every value, noise std and bias of every slice is bit-identical: the streamed path runs the same
    # float operations in the same order (band by band, weights built by row blocks, elementwise, region
    # sums as products of two or more rows); a mask box over half the image sums regions on the whole
    # image (the RegionSink), a small one on its crop plus the rest
    monkeypatch.setenv("HARNESS_NUMPY_MAPS", numpy_maps)
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (300, 257, 3)).astype(np.uint8)
    img[::8] //= 2  # a periodic pattern, so the peak detector has peaks to sum
    mask = np.zeros((300, 257), np.float32)
    y0, y1, x0, x1 = mask_box
    mask[y0:y1, x0:x1] = 1.0
    anchors = np.zeros((300, 257), bool)
    anchors[20:40, 200:240] = True
    (whole, wmeta), (streamed, smeta) = _both_paths(monkeypatch, img, mask, anchors=anchors)
    assert wmeta == smeta
    assert whole.keys() == streamed.keys() and len(whole) == 12
    for name, (slices, values, std, bias) in whole.items():
        s_slices, s_values, s_std, s_bias = streamed[name]
        assert slices == s_slices, name
        assert np.array_equal(values, s_values) and np.array_equal(std, s_std) and np.array_equal(bias, s_bias), name
    assert whole["periodic"][1].max() > 0.0


def test_large_path_float_image_without_mask(monkeypatch):
    img = np.random.default_rng(8).random((192, 320, 3))
    (whole, _), (streamed, _) = _both_paths(monkeypatch, img)
    for name in whole:
        assert np.array_equal(whole[name][1], streamed[name][1]), name


def test_per_size_keeps_large_arrays_only_in_a_scope_that_names_them(monkeypatch):
    calls = []

    @per_size(4)
    def plane(h, w):
        calls.append((h, w))
        return np.zeros((h, w))

    monkeypatch.setenv(LARGE_ENV, "100")
    plane(8, 8), plane(8, 8)  # 64 px: small, cached
    assert calls == [(8, 8)]
    plane(16, 16), plane(16, 16)  # 256 px: large, computed on every read
    assert calls == [(8, 8), (16, 16), (16, 16)]
    with size_scope(plane) as scope:
        a, b = plane(16, 16), plane(16, 16)
        assert a is b and len(calls) == 4
        scope.drop(plane, 16, 16)
        plane(16, 16)
        assert len(calls) == 5
    with size_scope():  # a scope that does not name it keeps nothing
        plane(16, 16), plane(16, 16)
    assert len(calls) == 7


@pytest.mark.parametrize("value, message", [("many", "a whole number of pixels, got 'many'"), ("-1", ">= 0, got -1")])
def test_bad_threshold_is_named(monkeypatch, value, message):
    monkeypatch.setenv(LARGE_ENV, value)
    with pytest.raises(ValueError, match=f"HARNESS_LARGE_PIXELS must be {message}"):
        sizecache.large_pixels()


def _pair_files(tmp_path, size):
    paths = []
    for name, img in zip("ab", synthetic_pair(size)):
        paths.append(tmp_path / f"{name}{size}.png")
        Image.fromarray(img).save(paths[-1], compress_level=1)
    return paths


def _traced_peak(paths) -> tuple[int, int]:
    from harness.comparing.files import compare_paths

    tracemalloc.start()
    try:
        result = compare_paths(*paths, max_pixels=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.pairs[0].error is None
    return peak, len(result.pairs[0].checks)


def _clear_size_caches() -> None:
    from harness.measuring import bands
    from harness.measuring.metrics import peaks, spectral

    for fn in (bands.radial_frequency, bands.rfft_weights, bands.band_filters, bands._pair_filter,
               spectral._band_power_weights, spectral._radial_onehot, spectral._radial_bins, peaks._hann2d,
               peaks._peak_bands):
        fn.cache_clear()


def test_compare_of_a_large_pair_peaks_under_six_float32_copies(tmp_path, monkeypatch):
    """tracemalloc counts numpy's buffers and every Python object made during one ``compare_paths``:
    decoding both PNGs, measuring both images, ~13,000 checks, PSNR and SSIM.  The streamed path
    peaks near 4.6 float32 copies; the whole-image path, building its per-size caches, near 8 (it
    took ~24 at 3000² before PSNR and SSIM went by strips)."""
    size = 768
    _traced_peak(_pair_files(tmp_path, 64))  # imports, compiled kernels, name caches: not image copies
    paths = _pair_files(tmp_path, size)
    monkeypatch.setenv(LARGE_ENV, str(size * size - 1))
    peak, n_checks = _traced_peak(paths)
    copies = peak / float32_copy_bytes(size)
    assert n_checks > 12000
    assert copies <= 6.0, f"streamed: peak {peak / 2**20:.0f} MiB = {copies:.2f} float32 copies"
    monkeypatch.setenv(LARGE_ENV, str(size * size))  # the same pair on the whole-image path, caches cold
    _clear_size_caches()
    whole = _traced_peak(paths)[0] / float32_copy_bytes(size)
    assert whole > 6.0 and whole > copies + 2.0, (whole, copies)


def test_measure_with_a_mask_over_most_of_a_large_image_peaks_under_six_copies(monkeypatch):
    """The mask regions of a crop as large as the image are summed without its 11-plane map stack
    (8.4 copies before the RegionSink, 5.2 after, at 1024²)."""
    size = 768
    img = synthetic_pair(size)[0]
    mask = np.zeros((size, size), np.float32)
    mask[50:700, 80:720] = 1.0
    measure(img[:64, :64], mask[32:96, 64:128])  # imports and compiled kernels: not image copies
    monkeypatch.setenv(LARGE_ENV, "0")
    tracemalloc.start()
    try:
        m = measure(img, mask)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert m.meta["mask_coverage"] == pytest.approx(650 * 640 / size**2)
    copies = peak / float32_copy_bytes(size)
    assert copies <= 6.0, f"peak {copies:.2f} float32 copies"


def test_peak_compare_rss_measures_a_child():
    peak, copies = peak_compare_rss(256)
    assert 30 * 2**20 < peak < 2**31  # an interpreter with numpy and scipy, far below 2 GB
    assert copies == pytest.approx(peak / (256 * 256 * 12))
