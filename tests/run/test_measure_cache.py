"""The measurement cache: a hit is the identical measurement; any change of input or code is a miss."""

import numpy as np
import pytest

from harness.measuring.driver import measure
from harness.run import measure_cache as mc
from harness.run.cache import StageCache
from harness.run.measure_cache import MeasureCache, cache_beside, cached_measure, measure_key


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), np.float32)
    mask[20:50, 30:80] = 1.0
    anchors = np.zeros((96, 128), np.float32)
    anchors[60:80, 10:40] = 1.0
    return image, mask, anchors


def _same(a, b) -> None:
    assert list(a.metrics) == list(b.metrics)
    for name in a.metrics:
        x, y = a.metrics[name], b.metrics[name]
        assert x.slices == y.slices
        for field in ("values", "std", "bias"):
            assert np.array_equal(getattr(x, field), getattr(y, field)), (name, field)
    assert repr(a.meta) == repr(b.meta)
    assert a.to_dict() == b.to_dict()


def test_a_hit_from_disk_is_the_identical_measurement(tmp_path, inputs):
    image, mask, anchors = inputs
    cold = MeasureCache(tmp_path)
    first = cached_measure(cold, image, mask, anchors=anchors, tile=32, ring=4)
    assert (cold.hits, cold.misses) == (0, 1)
    assert len(list(tmp_path.glob("*.json.gz"))) == 1
    fresh = MeasureCache(tmp_path)  # another process: nothing in memory, the entry on disk
    again = cached_measure(fresh, image, mask, anchors=anchors, tile=32, ring=4)
    assert (fresh.hits, fresh.misses) == (1, 0)
    _same(first, again)
    _same(again, measure(image, mask, anchors=anchors, tile=32, ring=4))


def test_a_hit_measures_nothing(tmp_path, inputs, monkeypatch):
    image, mask, anchors = inputs
    cached_measure(MeasureCache(tmp_path), image, mask, anchors=anchors, tile=32, ring=4)

    def refuse(*a, **k):
        raise AssertionError("measured on a hit")

    monkeypatch.setattr("harness.measuring.driver.measure", refuse)
    m = cached_measure(MeasureCache(tmp_path), image, mask, anchors=anchors, tile=32, ring=4)
    assert m.meta["tile"] == 32


def test_one_changed_pixel_tile_ring_mask_or_anchor_misses(inputs):
    image, mask, anchors = inputs
    base = measure_key(image, mask, anchors, 32, 4)
    pixel = image.copy()
    pixel[5, 7, 1] ^= 1
    moved = anchors.copy()
    moved[0, 0] = 1.0
    keys = {base, measure_key(pixel, mask, anchors, 32, 4), measure_key(image, mask, anchors, 64, 4),
            measure_key(image, mask, anchors, 32, 8), measure_key(image, None, anchors, 32, 4),
            measure_key(image, mask, None, 32, 4), measure_key(image, mask, moved, 32, 4),
            measure_key(image.astype(np.uint16), mask, anchors, 32, 4)}
    assert len(keys) == 8
    assert measure_key(image.copy(), mask.copy(), anchors.copy(), 32, 4) == base


def test_changed_code_identity_misses(tmp_path, inputs, monkeypatch):
    image, mask, anchors = inputs
    cached_measure(MeasureCache(tmp_path), image, mask, anchors=anchors, tile=32, ring=4)
    from harness.run import identity

    real = identity.measure_identity()
    assert set(real) == {"code", "versions", "python", "machine", "threads"}
    monkeypatch.setattr(identity, "measure_identity", lambda: {**real, "code": "0" * 64})
    edited = MeasureCache(tmp_path)
    cached_measure(edited, image, mask, anchors=anchors, tile=32, ring=4)
    assert (edited.hits, edited.misses) == (0, 1)
    assert len(list(tmp_path.glob("*.json.gz"))) == 2


def test_measuring_code_digest_covers_the_measuring_package():
    from harness.run.identity import measuring_code_digest

    digest = measuring_code_digest()
    assert len(digest) == 64 and digest == measuring_code_digest()


def test_a_garbled_entry_is_deleted_and_measured_again(tmp_path, inputs):
    image, mask, anchors = inputs
    cache = MeasureCache(tmp_path)
    first = cached_measure(cache, image, mask, anchors=anchors, tile=32, ring=4)
    (entry,) = tmp_path.glob("*.json.gz")
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    fresh = MeasureCache(tmp_path)
    key = measure_key(image, mask, anchors, 32, 4)
    assert fresh.get(key) is None and not entry.exists()
    _same(cached_measure(fresh, image, mask, anchors=anchors, tile=32, ring=4), first)
    assert entry.exists()


def test_a_tampered_value_fails_its_checksum(tmp_path, inputs):
    import json
    import zlib

    image, mask, anchors = inputs
    cached_measure(MeasureCache(tmp_path), image, mask, anchors=anchors, tile=32, ring=4)
    (entry,) = tmp_path.glob("*.json.gz")
    outer = json.loads(zlib.decompress(entry.read_bytes()))
    doc = json.loads(outer["doc"])
    doc["metrics"][0][2][0] += 1.0
    outer["doc"] = json.dumps(doc)
    entry.write_bytes(zlib.compress(json.dumps(outer).encode()))
    assert MeasureCache(tmp_path).get(measure_key(image, mask, anchors, 32, 4)) is None


def test_a_meta_json_would_change_is_not_cached(tmp_path, inputs):
    from harness.measuring.result import Measurement

    image, mask, anchors = inputs
    m = measure(image, mask, anchors=anchors, tile=32, ring=4)
    odd = Measurement(m.metrics, {**m.meta, "tiles": tuple(m.meta["tiles"])})
    cache = MeasureCache(tmp_path)
    cache.put("k" * 64, odd)
    assert cache.get("k" * 64) is None and not list(tmp_path.glob("*.json.gz"))


def test_the_folder_stays_under_its_bound(tmp_path, inputs, monkeypatch):
    image, mask, anchors = inputs
    monkeypatch.setattr(mc, "_RESCAN_EVERY", 1)
    cache = MeasureCache(tmp_path, max_bytes=1)
    m = measure(image, mask, anchors=anchors, tile=32, ring=4)
    cache.put("a" * 64, m)
    cache.put("b" * 64, m)
    assert [p.name for p in tmp_path.glob("*.json.gz")] == []


def test_cache_beside_the_stage_cache(tmp_path):
    on_disk = cache_beside(StageCache(tmp_path / "c", max_bytes=800 * 2**20))
    assert on_disk.directory == tmp_path / "c" / "measure"
    assert on_disk.max_bytes == 100 * 2**20  # an eighth of the stage cache's bound
    assert cache_beside(StageCache(tmp_path / "c")) is on_disk
    assert cache_beside(StageCache(None)).directory is None


def test_stage_cache_eviction_leaves_the_measure_folder_alone(tmp_path, inputs):
    image, mask, anchors = inputs
    cached_measure(MeasureCache(tmp_path / "measure"), image, mask, anchors=anchors, tile=32, ring=4)
    stage = StageCache(tmp_path, max_bytes=1)
    stage.put("0" * 64, image, None, {})
    assert stage.disk_usage() == 0 and len(list((tmp_path / "measure").glob("*.json.gz"))) == 1


def test_a_fully_cached_case_neither_runs_a_stage_nor_measures(tmp_path, monkeypatch):
    from harness.run.case import execute_case
    from harness.suite.suites import load_suite

    p = tmp_path / "mini.toml"
    p.write_text('name = "mini"\nseeds = [1]\nvectors = ["microprint_dilation"]\n[pipelines.p]\n'
                 'detect = { backend = "ground_truth" }\nmask = { backend = "shape", dilate_px = 2 }\n'
                 'inpaint = { backend = "telea" }\ndenoise = { backend = "nlmeans", strength = 0.45 }\n'
                 'upscale = { backend = "lanczos", scale = 2 }\n')
    suite = load_suite(p)
    (case,) = suite.cases()
    cold = execute_case(case, suite, tmp_path / "run1", StageCache(tmp_path / "cache"))
    assert cold.error is None
    mc._BESIDE.clear()  # a new process: nothing in memory

    def refuse(*a, **k):
        raise AssertionError("computed on a fully cached case")

    monkeypatch.setattr("harness.measuring.driver.measure", refuse)
    monkeypatch.setattr("harness.stages.base.run_stage", refuse)
    monkeypatch.setattr("harness.stages.run_stage", refuse)
    warm = execute_case(case, suite, tmp_path / "run2", StageCache(tmp_path / "cache"))
    assert warm.error is None
    assert warm.measurement == cold.measurement
    assert [c.status for c in warm.expectations] == [c.status for c in cold.expectations]
