"""``--executor ray`` on a local Ray (one per module, 2 CPUs): same results as the process pool,
model-holding actors, crash retry, timeouts, images back to the driver, GPU actor shapes.

Skipped only when ``ray`` is not installed (``pip install -c constraints.txt -e '.[ray]'``).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))  # faultkit: the fault matrix's helpers

from faultkit import TESTS, backend  # noqa: E402

from harness.imageio import load_image
from harness.errors import ConfigError  # noqa: E402
from harness.project import load_project  # noqa: E402
from harness.run.executors import make_executor  # noqa: E402
from harness.run.job import CaseJob  # noqa: E402
from harness.run.ray_actor import gpu_stage  # noqa: E402
from harness.run.ray_executor import RayExecutor, ray_address  # noqa: E402
from harness.run.runner import run_suite  # noqa: E402
from harness.suite.suites import load_suite  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# 4 cases over 2 pipelines of smoke: OCR + PatchMatch (classical) and the trained face generator
# with OIDN and Real-CUGAN (weights loaded in the actors)
SMOKE_K = "microprint_dilation and ocr_patchmatch or gan_faces"

SUITE = '''
name = "rayfaults"
seeds = {seeds}
vectors = ["microprint_dilation"]
{pipelines}
'''

PIPELINE = '''
[pipelines.{name}]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {denoise}
upscale = {{ backend = "lanczos", scale = 2 }}
'''


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module (its start-up costs seconds): the executor joins it."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    if started:
        ray.shutdown()


def faults_suite(tmp_path: Path, seeds=(1, 2, 3), **pipelines: str):
    text = SUITE.format(seeds=list(seeds), pipelines="".join(PIPELINE.format(name=n, denoise=d)
                                                             for n, d in pipelines.items()))
    (tmp_path / "rayfaults.toml").write_text(text)
    return load_suite(tmp_path / "rayfaults.toml")


def run_faults(tmp_path: Path, suite, workers=2, timeout=None, cases=None, **kw):
    """The cases (default: all) of ``suite`` on Ray; outputs by case id, and the executor."""
    job = CaseJob(suite, tmp_path / "run", None, pythonpath=(str(TESTS),))
    ex = RayExecutor(workers, timeout, **kw)
    return {o.case_id: o for o in ex.run(cases or suite.cases(), job)}, ex


def checks_of(report, run_dir: Path) -> dict[str, tuple]:
    """Every check of the run (checks.parquet, not only the deciding ones report.json keeps), by case."""
    from harness.report.checks_table import read_checks

    rows = read_checks(run_dir).to_pylist()
    by_case: dict[str, list[str]] = {}
    for r in rows:
        by_case.setdefault(r.pop("case"), []).append(json.dumps(r, sort_keys=True))
    return {c.id: (c.status, c.error, c.n_checks, sorted(by_case.get(c.id, []))) for c in report.cases}


def image_digests(report, run_dir: Path) -> dict[str, str]:
    """sha256 of the pixels of every stage image of the run, by case and stage (a run-folder PNG, or an
    object of the run's image store: reading it proves that it is there).  Pixels, not PNG bytes: a
    store that held an image before keeps that first encoding (its index maps pixels to it)."""
    out = {}
    for c in report.cases:
        for stage, value in c.artifacts.items():
            if value.startswith("sha256:"):
                from harness.run.store import ImageStore

                path = ImageStore(report.environment["store"]).path(value)
            else:
                path = run_dir / value
            out[f"{c.id}/{stage}"] = hashlib.sha256(load_image(path).tobytes()).hexdigest()
    return out


def test_local_ray_equals_the_process_pool_check_for_check(tmp_path, monkeypatch):
    """The smoke cases on Ray (images shipped back as bytes, as on a cluster) and on `--workers 2`."""
    project = load_project(REPO)
    suite = load_suite("smoke", project=project)
    kw = dict(project=project, seeds=[1, 2], k_expr=SMOKE_K, workers=2)
    pool, pool_dir = run_suite(suite, out_root=tmp_path / "pool", **kw)
    monkeypatch.setenv("HARNESS_RAY_SHIP_IMAGES", "1")
    on_ray, ray_dir = run_suite(suite, out_root=tmp_path / "ray", executor="ray", **kw)
    assert on_ray.environment["executor"] == "ray"
    assert sorted(c.pipeline for c in on_ray.cases) == ["faces", "faces", "ocr_patchmatch", "ocr_patchmatch"]
    got = checks_of(on_ray, ray_dir)
    assert sum(len(rows) for *_, rows in got.values()) == sum(c.n_checks for c in on_ray.cases) > 1000
    assert got == checks_of(pool, pool_dir)  # every metric, slice, value, baseline, delta and status
    assert [c.status for c in on_ray.cases] == ["pass"] * 4
    assert {c.id: sorted(c.artifacts) for c in on_ray.cases} == {c.id: sorted(c.artifacts) for c in pool.cases}
    digests = image_digests(on_ray, ray_dir)
    assert digests == image_digests(pool, pool_dir) and len(digests) >= 4 * 7


def test_a_crash_is_retried_once_on_a_fresh_actor_and_reported_for_that_case_only(tmp_path):
    marker = tmp_path / "once"
    suite = faults_suite(tmp_path, crash=backend("exit_now", code=3, seeds=(2,)),
                         once=backend("crash_once", marker=str(marker), seeds=(1,)))
    outs, ex = run_faults(tmp_path, suite)
    errors = {cid: o.error for cid, o in outs.items() if o.error}
    assert list(errors) == ["microprint_dilation/crash/s2"]
    assert errors["microprint_dilation/crash/s2"].count("died: its worker process has died") == 2
    assert "; retried once on a fresh actor: Ray actor (pid " in errors["microprint_dilation/crash/s2"]
    healed = outs["microprint_dilation/once/s1"]
    assert healed.measurement and healed.config["retried"].endswith("in this case; passed on a fresh actor")
    assert sum(1 for o in outs.values() if o.measurement) == 5
    ended = {s["pid"]: s["ended"] for s in ex.actor_stats}
    assert ended[int(Path(f"{marker}.1").read_text())] == "crashed"  # the actor it crashed was not reused
    assert sorted(ended.values()).count("crashed") == 3  # once/s1 once, crash/s2 twice
    assert sum(s["cases"] for s in ex.actor_stats) == 5  # the other actors ran the five good cases


def test_a_hanging_case_times_out_and_the_others_finish(tmp_path):
    suite = faults_suite(tmp_path, p=backend("hang", seeds=(2,)))
    outs, ex = run_faults(tmp_path, suite, timeout=10)
    hung = outs.pop("microprint_dilation/p/s2")
    assert hung.error == ("timed out after 10 s in stage denoise (backend 'faults.fault_backends:hang'); "
                          "its Ray actor was killed")
    assert [o.error for o in outs.values()] == [None, None] and all(o.measurement for o in outs.values())


def test_backends_load_once_per_actor_and_images_land_in_the_run_folder(tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    suite = faults_suite(tmp_path, seeds=(1, 2, 3, 4, 5, 6), p=backend("weighted", folder=str(folder))
                         .replace("fault_backends", "model_backends"))
    outs, ex = run_faults(tmp_path, suite, ship_images=False)
    assert [o.error for o in outs.values()] == [None] * 6
    loads = (folder / "loads").read_text().split()
    ran = [line.split()[1] for line in (folder / "cases").read_text().splitlines()]
    assert len(loads) == len(set(loads)) == 2  # one load in each of the two actors ...
    assert set(ran) == set(loads) and len(ran) == 6  # ... for six cases
    assert sorted(s["cases"] for s in ex.actor_stats) == sorted(ran.count(p) for p in set(loads))
    out = outs["microprint_dilation/p/s4"]
    assert (tmp_path / "run" / out.artifacts["output"]).is_file()  # the actor wrote the run folder itself


def test_shipped_images_go_through_put_png(tmp_path):
    """The cluster path: the actor returns PNG bytes; the driver stores them (here a dict keyed by sha256)."""
    from PIL import Image

    stored: dict[str, bytes] = {}

    def put_png(data: bytes) -> str:
        ref = "sha256:" + hashlib.sha256(data).hexdigest()
        stored[ref] = data
        return ref

    suite = faults_suite(tmp_path, seeds=(1, 2), p=backend("identity"))
    outs, _ = run_faults(tmp_path, suite, put_png=put_png, ship_images=True)
    out = outs["microprint_dilation/p/s1"]
    assert set(out.artifacts) == {"input", "detect_mask", "mask_mask", "inpaint", "denoise", "upscale", "output"}
    assert all(v in stored for v in out.artifacts.values())
    final = Image.open(io.BytesIO(stored[out.artifacts["output"]]))
    assert final.size == (2 * Image.open(io.BytesIO(stored[out.artifacts["input"]])).size[0],
                          2 * Image.open(io.BytesIO(stored[out.artifacts["input"]])).size[1])
    assert not (tmp_path / "run").exists()  # nothing written on the worker side of the driver's disk


def test_a_gpu_stage_needs_a_gpu_actor(tmp_path):
    text = SUITE.format(seeds=[1], pipelines='''
[pipelines.sd_cuda]
vectors = ["generated_texture"]
generate = { backend = "sd", steps = 1, device = "cuda" }
detect = { backend = "ground_truth" }
[pipelines.sd_auto]
vectors = ["generated_texture"]
generate = { backend = "sd", steps = 1 }
detect = { backend = "ground_truth" }
''').replace('vectors = ["microprint_dilation"]', 'vectors = ["generated_texture"]')
    (tmp_path / "gpu.toml").write_text(text)
    suite = load_suite(tmp_path / "gpu.toml")
    by_name = {p.name: p for p in suite.pipelines}
    assert gpu_stage(by_name["sd_cuda"], 0) == "generate (backend 'sd', device 'cuda')"
    assert gpu_stage(by_name["sd_auto"], 0) is None and gpu_stage(by_name["sd_auto"], 2) == \
        "generate (backend 'sd', device 'cuda')"
    assert gpu_stage(load_suite("smoke").pipelines[0], 8) is None  # the classical stages run on the CPU
    cuda = [c for c in suite.cases() if c.pipeline.name == "sd_cuda"]
    outs, ex = run_faults(tmp_path, suite, workers=1, cases=cuda)  # this Ray has no GPU
    assert ex.actor_stats == []  # no actor was started for it
    assert outs["generated_texture/sd_cuda/s1"].error == ("stage generate (backend 'sd', device 'cuda') needs "
                                                          "1 GPU, the Ray cluster has 0")


def test_ray_address_and_options():
    assert ray_address("ray://head:10001") == "ray://head:10001" and ray_address("10.0.0.1:6379") == "10.0.0.1:6379"
    with pytest.raises(ConfigError, match=r"--ray-address 'head': expected HOST:PORT, ray://HOST:PORT or auto"):
        ray_address("head")
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        make_executor("local", 1, address="head:6379")
    ex = make_executor("ray", 3, 2.5, address="auto")
    assert (ex.name, ex.workers, ex.timeout, ex.address) == ("ray", 3, 2.5, "auto")


def test_the_cli_runs_on_ray_and_checks_its_address(tmp_path, monkeypatch, capsys):
    from harness.cli import main
    from harness.report.schema import load_report

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    suite = faults_suite(tmp_path, seeds=(1,), p=backend("identity"))
    args = ["run", "--suite", str(suite.path), "--out", str(tmp_path / "r"), "--baselines", str(tmp_path / "b"), "-q"]
    assert main([*args, "--executor", "ray", "--ray-address", "head"]) == 2
    assert "--ray-address 'head': expected HOST:PORT, ray://HOST:PORT or auto" in capsys.readouterr().err
    assert main([*args, "--ray-address", "head:6379"]) == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    monkeypatch.syspath_prepend(str(TESTS))  # the suite's backend, for this process and (adopted) its actors
    assert main([*args, "--executor", "ray"]) == 1  # measured, but no baseline to compare with
    report = load_report(Path(capsys.readouterr().out.strip().splitlines()[-1]))
    assert report.environment["executor"] == "ray" and [c.status for c in report.cases] == ["fail"]
    assert report.cases[0].error.startswith("no baseline for microprint_dilation/p/s1: create it with `harness bake")
    assert {c.metric for c in report.cases[0].checks} == {"stage_effect", "expect"}  # its absolute checks


def test_a_signal_while_waiting_on_ray_interrupts_the_run(tmp_path, monkeypatch):
    """SIGTERM while the driver waits on a hanging case: RunInterrupted (exit 143), partial report."""
    import os
    import signal
    import threading

    from harness.run.runner import RunInterrupted

    suite = faults_suite(tmp_path, seeds=(1, 2), p=backend("hang", seeds=(2,)))
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("[1/2]"):  # s1 landed, s2 hangs: the driver is waiting on Ray when the signal comes
            threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGTERM)).start()

    monkeypatch.syspath_prepend(str(TESTS))  # the suite's backend, for this process and (adopted) its actors
    with pytest.raises(RunInterrupted) as info:
        run_suite(suite, out_root=tmp_path / "r", baselines_root=tmp_path / "b", executor="ray", workers=2,
                  progress=progress)
    assert info.value.exit_code == 143
    assert info.value.report.notes[0].startswith("interrupted by SIGTERM: 1 of 2 cases recorded; finish it with")
