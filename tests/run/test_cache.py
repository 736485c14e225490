"""The stage cache: no stale hits (code, weights), corrupt entries recomputed, a size bound
with LRU eviction, atomic concurrent writes, hits visible in the case record."""

import json
import multiprocessing as mp
import os
import sys
import uuid

import numpy as np
import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.run.cache import StageCache, stage_key
from harness.run.runner import run_suite
from harness.suite.suites import load_suite
from harness.project import load_project

# ----------------------------------------------------------------------------- end to end

STAGES = ["generate", "detect", "mask", "inpaint", "denoise", "upscale"]

HARNESS_TOML = '''
vectors = "vectors"
suites = "suites"
baselines = "baselines"
reports = "reports"
cache = ".harness-cache"
pythonpath = ["."]
suite = "mini"
'''

SUITE = '''
name = "mini"
seeds = [1]
vectors = ["microprint_dilation"]
threads = 1

[pipelines.custom]
generate = {{ backend = "source" }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "{denoise}" {params} }}
upscale = {{ backend = "lanczos", scale = 2 }}
'''

IDENTITY = '''
import numpy as np


def denoise(image, ctx):
    return np.clip(image.astype(np.int16) + 1, 0, 255).astype(np.uint8)  # a stage that does something
'''
HALVED = '''
import numpy as np


def denoise(image, ctx):
    return (image // 2).astype(np.uint8)  # an edit that halves brightness
'''
WEIGHTED = '''
from pathlib import Path

import numpy as np


def denoise(image, ctx, weights=""):
    gain = float(Path(weights).read_text())  # a "checkpoint": one number read from a file
    return np.clip(np.rint(image * gain) + 1, 0, 255).astype(np.uint8)
'''


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project in tmp_path whose suite's denoise stage is a custom backend module of its own."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # CaseJob.setup adds the project's pythonpath
    name = f"cache_backend_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj"
    (root / "suites").mkdir(parents=True)
    (root / "vectors").mkdir()
    (root / "harness.toml").write_text(HARNESS_TOML)

    def make(source: str, params: str = "") -> tuple:
        (root / f"{name}.py").write_text(source)
        (root / "suites" / "mini.toml").write_text(SUITE.format(denoise=f"{name}:denoise", params=params))
        return root, root / f"{name}.py"

    yield make
    sys.modules.pop(name, None)


def run(root):
    project = load_project(config_file=root)
    report, run_dir = run_suite(load_suite("mini", project=project), project=project, cache_dir=project.cache)
    (case,) = report.cases
    return report.status, case.config["cache"], (case, run_dir)


def test_unchanged_rerun_hits_edited_backend_misses_and_fails(project, capsys):
    root, module = project(IDENTITY)
    assert main(["bake", "--project", str(root)]) == 0
    assert "1 new" in capsys.readouterr().out
    status, cache, _ = run(root)
    assert status == "pass" and cache == {stage: "hit" for stage in STAGES}  # all served from the cache

    module.write_text(HALVED)  # same path, same name, new code
    status, cache, (case, run_dir) = run(root)
    assert cache["denoise"] == "miss" and cache["upscale"] == "miss"  # recomputed, with the edited code
    assert all(cache[s] == "hit" for s in STAGES[:4])
    assert status == "fail", "the edited backend must run and fail against the old baseline"
    assert any(c.status == "fail" for c in case.checks)
    from PIL import Image

    from harness.run.store import resolve_artifact

    store = load_project(config_file=root).store_root  # stage images are references into the image store
    before, after = (np.asarray(Image.open(resolve_artifact(case.artifacts[s], run_dir, store))).astype(float)
                     for s in ("inpaint", "denoise"))
    assert after.mean() == pytest.approx(before.mean() / 2, abs=1)  # the edited code ran, not the cached module

    module.write_text(IDENTITY)  # restored: the original entries are hit again
    status, cache, _ = run(root)
    assert status == "pass" and cache == {stage: "hit" for stage in STAGES}


def test_changed_checkpoint_content_misses_and_fails(project, capsys, monkeypatch):
    root, _ = project(WEIGHTED, params=', weights = "weights.txt"')
    weights = root / "weights.txt"
    weights.write_text("1.00")
    monkeypatch.chdir(root)  # the parameter is relative to the working directory, as the backend opens it
    assert main(["bake", "--project", str(root)]) == 0
    capsys.readouterr()
    status, cache, _ = run(root)
    assert status == "pass" and cache["denoise"] == "hit"

    weights.write_text("0.50")  # same path, same size: new content
    status, cache, _ = run(root)
    assert cache["denoise"] == "miss" and status == "fail"

    weights.write_text("1.00")
    status, cache, _ = run(root)
    assert status == "pass" and cache == {stage: "hit" for stage in STAGES}


def test_in_process_reruns_reload_the_edited_module(project, tmp_path):
    """Cases executed in this process (the pytest plugin, the serial executor, a reused Ray
    worker): the module imported by the first run is stale after the edit and is reloaded."""
    from PIL import Image

    from harness.run.case import execute_case

    root, module = project(IDENTITY)
    proj = load_project(config_file=root)
    proj.activate()
    suite = load_suite("mini", project=proj)
    (case,) = suite.cases()

    def execute(run: str):
        out = execute_case(case, suite, tmp_path / run, StageCache(proj.cache))
        assert out.error is None, out.error
        mean = {s: np.asarray(Image.open(tmp_path / run / out.artifacts[s])).mean() for s in ("inpaint", "denoise")}
        return out.config["cache"], mean

    cache, _ = execute("r1")
    assert set(cache.values()) == {"miss"}
    module.write_text(HALVED)
    cache, mean = execute("r2")
    assert cache["denoise"] == "miss" and cache["inpaint"] == "hit"
    assert mean["denoise"] == pytest.approx(mean["inpaint"] / 2, abs=1)  # the edited code ran
    module.write_text(IDENTITY)
    cache, mean = execute("r3")
    assert set(cache.values()) == {"hit"} and mean["denoise"] > mean["inpaint"]


# ----------------------------------------------------------------------------- entries


def entry(seed=0, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (*shape, 3), dtype=np.uint8), rng.random(shape, dtype=np.float32),
            {"coverage": 0.25, "seed": seed})


def same(a, b):
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_entries_round_trip_through_disk(tmp_path):
    StageCache(tmp_path).put("k", *entry())
    c = StageCache(tmp_path)
    assert same(c.get("k"), entry()) and c.hits == 1
    assert c.get("other") is None and c.misses == 1


def test_a_truncated_entry_is_deleted_and_recomputed(tmp_path):
    StageCache(tmp_path).put("k", *entry())
    p = tmp_path / "k.npz"
    data = p.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        p.write_bytes(data[:cut])
        assert StageCache(tmp_path).get("k") is None, cut
        assert not p.exists()  # never trusted, never read again
        StageCache(tmp_path).put("k", *entry())  # recomputed
        assert same(StageCache(tmp_path).get("k"), entry())


def test_flipped_bytes_are_detected(tmp_path):
    StageCache(tmp_path).put("k", *entry())
    p = tmp_path / "k.npz"
    data = p.read_bytes()
    detected = 0
    for off in range(0, len(data), max(1, len(data) // 97)):
        garbled = bytearray(data)
        garbled[off] ^= 0xFF
        p.write_bytes(bytes(garbled))
        got = StageCache(tmp_path).get("k")
        if got is None:
            detected += 1
            assert not p.exists()
        else:  # a flip in zip metadata that changes nothing read: the content is verified intact
            assert same(got, entry()), off
    assert detected > 80  # the payload is most of the file: nearly every flip is caught
    garbled = bytearray(data)
    garbled[len(data) // 2] ^= 0x01  # one bit in the middle of the image data
    p.write_bytes(bytes(garbled))
    assert StageCache(tmp_path).get("k") is None


def test_a_consistent_npz_with_other_content_or_key_is_refused(tmp_path):
    import io

    StageCache(tmp_path).put("k", *entry())
    with np.load(tmp_path / "k.npz") as z:
        arrays = {n: z[n] for n in z.files}
    arrays["image"] = arrays["image"] // 2  # valid zip, valid arrays, stale checksum
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    (tmp_path / "k.npz").write_bytes(buf.getvalue())
    assert StageCache(tmp_path).get("k") is None
    StageCache(tmp_path).put("k", *entry())
    (tmp_path / "j.npz").write_bytes((tmp_path / "k.npz").read_bytes())  # an entry under another key
    assert StageCache(tmp_path).get("j") is None and same(StageCache(tmp_path).get("k"), entry())


# ----------------------------------------------------------------------------- size bound


def test_size_bound_evicts_least_recently_used(tmp_path):
    c = StageCache(tmp_path)
    c.put("k1", *entry(1))
    size = (tmp_path / "k1.npz").stat().st_size
    c = StageCache(tmp_path, max_bytes=int(size * 3.5))
    for i, k in enumerate(["k1", "k2", "k3"]):
        c.put(k, *entry(i + 1))
        os.utime(tmp_path / f"{k}.npz", ns=(10**18 + i * 10**9,) * 2)  # k1 oldest .. k3 newest
    assert c.disk_usage() <= c.max_bytes
    assert same(StageCache(tmp_path).get("k1"), entry(1))  # a hit: k1 is now the most recently used
    c.put("k4", *entry(4))  # 4 entries > 3.5: the least recently used (k2) goes
    names = sorted(p.stem for p in tmp_path.glob("*.npz"))
    assert names == ["k1", "k3", "k4"] and c.disk_usage() <= c.max_bytes
    c.put("k5", *entry(5))
    assert "k3" not in {p.stem for p in tmp_path.glob("*.npz")} and c.disk_usage() <= c.max_bytes


def test_memory_layer_is_bounded_and_no_directory_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = sum(a.nbytes for a in entry()[:2])
    c = StageCache(None, memory_bytes=int(one * 2.5))  # --no-cache: memory only, for one run
    for i in range(5):
        c.put(f"k{i}", *entry(i))
    assert c.get("k0") is None and same(c.get("k4"), entry(4))
    assert not list(tmp_path.iterdir())


def test_cache_max_mb_is_a_project_key(tmp_path):
    (tmp_path / "harness.toml").write_text("cache_max_mb = 5\n")
    assert load_project(tmp_path).cache_max_mb == 5
    (tmp_path / "harness.toml").write_text("")
    assert load_project(tmp_path).cache_max_mb == 2048
    (tmp_path / "harness.toml").write_text("cache_max_mb = 0\n")
    with pytest.raises(ConfigError, match=r"harness.toml: cache_max_mb: expected a whole number of megabytes"):
        load_project(tmp_path)


# ----------------------------------------------------------------------------- concurrency


def _writer(directory, barrier, n):
    c = StageCache(directory)
    barrier.wait()
    for _ in range(n):
        c.put("same", *entry(7))
        c._mem.clear()


def test_two_processes_writing_one_key_both_leave_a_valid_entry(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_writer, args=(tmp_path, barrier, 40)) for _ in range(2)]
    for p in procs:
        p.start()
    barrier.wait()
    seen = 0
    while any(p.is_alive() for p in procs):  # a reader meanwhile never sees a torn entry
        got = StageCache(tmp_path).get("same")
        if got is not None:
            assert same(got, entry(7))
            seen += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert same(StageCache(tmp_path).get("same"), entry(7))
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


# ----------------------------------------------------------------------------- the key


def test_key_changes_with_threads_and_parameters():
    from harness.threads import set_threads
    from harness.stages import backend_config, build_backend

    b = build_backend("denoise", "nlmeans", {"strength": 0.45})
    img = entry()[0]
    k1 = stage_key("denoise", backend_config(b), b, 1, img)
    assert stage_key("denoise", backend_config(b), b, 1, img) == k1
    b2 = build_backend("denoise", "nlmeans", {"strength": 0.5})
    assert stage_key("denoise", backend_config(b2), b2, 1, img) != k1
    try:
        set_threads(2)
        assert stage_key("denoise", backend_config(b), b, 1, img) != k1
    finally:
        set_threads(1)
    assert stage_key("denoise", backend_config(b), b, 1, img) == k1
    assert json.dumps(k1)  # a plain hex string


def test_key_changes_with_the_device_the_backend_runs_on(monkeypatch):
    """One backend config (device "auto"): resolved to cpu or to cuda, two keys -- a cuda output is never
    a cache hit for a cpu run."""
    torch = pytest.importorskip("torch")
    from harness.stages import backend_config, build_backend

    b = build_backend("generate", "sd", {"device": "auto"})
    monkeypatch.setattr(b, "weight_paths", lambda: [])  # the key without building the tiny checkpoint
    img = entry()[0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = stage_key("generate", backend_config(b), b, 1, img)
    assert stage_key("generate", backend_config(b), b, 1, img) == on_cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_cuda = stage_key("generate", backend_config(b), b, 1, img)
    assert on_cuda != on_cpu
    explicit = build_backend("generate", "sd", {"device": "cuda"})
    monkeypatch.setattr(explicit, "weight_paths", lambda: [])
    assert stage_key("generate", backend_config(explicit), explicit, 1, img) not in (on_cpu, on_cuda)


def test_key_of_a_builtin_ignores_files_named_like_its_string_parameters(tmp_path, monkeypatch):
    """sd's `variant = "a"` and rapidocr's `mode = "boxes"` are values, not files: a file `a` or
    `boxes` in the working directory, or its edit, changes no key (it was hashed before)."""
    torch = pytest.importorskip("torch")  # noqa: F841 - sd's module needs it
    from harness.stages import backend_config, build_backend

    monkeypatch.chdir(tmp_path)
    img = entry()[0]
    sd = build_backend("generate", "sd", {"variant": "a"})
    monkeypatch.setattr(sd, "weight_paths", lambda: [])  # the key without building the tiny checkpoint
    ocr = build_backend("detect", "rapidocr", {"mode": "boxes"})
    keys = [stage_key(b.stage, backend_config(b), b, 1, img) for b in (sd, ocr)]
    (tmp_path / "a").write_text("1")
    (tmp_path / "boxes").mkdir()
    (tmp_path / "boxes" / "x.bin").write_bytes(b"1")
    assert [stage_key(b.stage, backend_config(b), b, 1, img) for b in (sd, ocr)] == keys
    (tmp_path / "a").write_text("2")
    assert [stage_key(b.stage, backend_config(b), b, 1, img) for b in (sd, ocr)] == keys
