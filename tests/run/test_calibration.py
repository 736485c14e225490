"""`harness bake --calibrate N`: the pipeline measures its own noise.

A nondeterministic but benign stage fails a plain bake-then-run and passes once the bake
has measured each slice's spread; a real regression still fails; un-calibrated baselines are
what they always were, and old baselines without a spread load."""

import json

import numpy as np
import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.measuring.result import Measurement, MetricValues, floor_std
from harness.suite.baselines import BaselineStore
from harness.run.calibration import spread_of
from harness.suite.suites import Calibration, load_suite

CASE = "microprint_dilation/p/s1"

# A denoise stage that is tv plus a global offset it draws from a sequence shared by every
# process (a counter file): a stand-in for a benign nondeterministic stage (±2 LSB per channel).
BACKEND = '''
import os
import numpy as np
from harness.stages import build_backend

OFFSETS = [(0, 0, 0), (2, -2, 0), (-2, 2, 1), (1, -1, -1), (-1, 1, 2)]  # per channel

def noisy_tv(image, ctx, strength=0.1):
    out = build_backend("denoise", "tv", {"strength": strength})(image, ctx).image
    path = os.environ["CAL_TEST_COUNTER"]
    n = int(open(path).read())
    open(path, "w").write(str(n + 1))
    return np.clip(out.astype(np.int16) + np.array(OFFSETS[n % len(OFFSETS)]), 0, 255).astype(np.uint8)
'''


def suite_text(denoise: str, calibrate: str = "") -> str:
    return f'''
name = "cal"
seeds = [1]
vectors = ["microprint_dilation"]
{calibrate}
[pipelines.p]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {denoise}
upscale = {{ backend = "lanczos" }}
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "harness.toml").write_text("")
    (tmp_path / "vectors").mkdir()
    (tmp_path / "cal_noisy_backend.py").write_text(BACKEND)
    (tmp_path / "counter").write_text("0")
    monkeypatch.setenv("CAL_TEST_COUNTER", str(tmp_path / "counter"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_suite(folder, name, text):
    p = folder / f"{name}.toml"
    p.write_text(text)
    return p


def cli(cmd, suite, baselines, cache, *extra):
    args = [cmd, "--suite", str(suite), "--baselines", str(baselines), "--cache", str(cache), *extra]
    if cmd == "run":
        args += ["--out", str(baselines.parent / "reports")]
    return main(args)


def doc(baselines):
    """The stored document in the in-memory form (either layout), without its approvals (who/when/run)."""
    from harness.suite.baselines.document import read_document

    d = read_document((baselines / "cal" / f"{CASE}.json").read_bytes())
    d.pop("approvals", None)
    return d


def test_suite_calibrate_table(project):
    s = load_suite(write_suite(project, "a", suite_text('{ backend = "tv", strength = 0.1 }')))
    assert s.calibrate is None
    s = load_suite(write_suite(project, "b", suite_text('{ backend = "tv", strength = 0.1 }',
                                                        '[calibrate]\nrenders = 3\nperturb = ["jitter", "threads"]')))
    assert s.calibrate == Calibration(3, ("jitter", "threads"))
    for bad in ('[calibrate]\nrenders = 1', '[calibrate]\nperturb = ["wobble"]', '[calibrate]\nperturb = []',
                '[calibrate]\nrender = 3'):
        with pytest.raises(ConfigError, match="calibrate"):
            load_suite(write_suite(project, "c", suite_text('{ backend = "tv", strength = 0.1 }', bad)))


def test_calibrated_bake_stores_spread_uncalibrated_stays_byte_identical(project, capsys):
    plain = write_suite(project, "plain", suite_text('{ backend = "tv", strength = 0.1 }'))
    cal = write_suite(project, "calib", suite_text('{ backend = "tv", strength = 0.1 }',
                                                   '[calibrate]\nrenders = 3\nperturb = ["jitter", "threads"]'))
    assert cli("bake", plain, project / "b0", project / "c0") == 0
    before = (project / "b0" / "cal" / f"{CASE}.json").read_bytes()
    assert "spread" not in json.loads(before)
    # the suite declares [calibrate] but --calibrate 0 turns it off: the same baseline (but who baked it when)
    assert cli("bake", cal, project / "b1", project / "c1", "--calibrate", "0") == 0
    assert doc(project / "b1") == doc(project / "b0")
    assert cli("bake", cal, project / "b2", project / "c2", "--calibrate", "2") == 0
    d = doc(project / "b2")
    spread = d.pop("spread")
    assert d == doc(project / "b0")  # the baked measurement is the unperturbed one
    metrics = d["measurement"]["metrics"]
    assert set(spread) == set(metrics)
    assert all(len(spread[m]) == len(metrics[m]["slices"]) for m in metrics)
    flat = [v for vals in spread.values() for v in vals]
    assert all(v >= 0 and v == float(f"{v:.3g}") for v in flat)
    assert max(flat) > 0  # ±1 LSB input jitter moves some slice
    base = BaselineStore("cal", project / "b2").load(CASE)
    assert set(base.spread) == set(metrics)
    for m, mv in base.measurement.metrics.items():
        assert np.all(mv.std >= np.asarray(spread[m]) - 1e-12)
    capsys.readouterr()
    assert cli("bake", cal, project / "b3", project / "c3", "--calibrate", "1") == 2
    assert "--calibrate 1: expected 0 (off) or >= 2" in capsys.readouterr().err
    assert not (project / "b3").exists()


def test_nondeterministic_stage_fails_uncalibrated_passes_calibrated(project, capsys):
    s = write_suite(project, "noisy", suite_text('{ backend = "cal_noisy_backend:noisy_tv", strength = 0.1 }'))
    counter = project / "counter"
    # un-calibrated: baked with offset 0, run with offset (+2, -2, 0) -> fails
    assert cli("bake", s, project / "b0", project / "c0") == 0
    counter.write_text("1")
    assert cli("run", s, project / "b0", project / "c1") == 1
    # calibrated: baked with offset 0, renders with offsets 1..3 (spread measured), runs with 4, 1, 2 -> pass
    counter.write_text("0")
    assert cli("bake", s, project / "b1", project / "c2", "--calibrate", "3") == 0
    assert int(counter.read_text()) == 4
    assert doc(project / "b1")["spread"]
    for start in (4, 1, 2):
        counter.write_text(str(start))
        assert cli("run", s, project / "b1", project / f"c3{start}") == 0, start


def test_real_regression_still_fails_calibrated(project, capsys):
    s = write_suite(project, "noisy", suite_text('{ backend = "cal_noisy_backend:noisy_tv", strength = 0.1 }'))
    assert cli("bake", s, project / "b", project / "c0", "--calibrate", "3") == 0
    strong = write_suite(project, "strong", suite_text('{ backend = "cal_noisy_backend:noisy_tv", strength = 0.5 }'))
    (project / "counter").write_text("0")  # offset 0, as baked: only the strength differs
    assert cli("run", strong, project / "b", project / "c1") == 1
    run = max((project / "reports").iterdir(), key=lambda p: (p / "report.json").stat().st_mtime_ns)
    from harness.report.checks_table import read_checks

    failed = set(read_checks(run, ["metric"], [("status", "=", "fail")]).column("metric").to_pylist())
    assert failed - {"expect"}  # compared slices fail, not only the absolute checks


def test_old_baseline_without_spread_loads_unchanged(project, capsys):
    s = write_suite(project, "plain", suite_text('{ backend = "tv", strength = 0.1 }'))
    assert cli("bake", s, project / "b", project / "c") == 0
    base = BaselineStore("cal", project / "b").load(CASE)
    assert base.spread == {}
    stored = Measurement.from_dict(doc(project / "b")["measurement"])
    for m, mv in stored.metrics.items():
        assert np.array_equal(base.measurement.metrics[m].std, mv.std)


def test_floor_std_and_spread_of():
    m = Measurement({"mean": MetricValues(("all", "tile=r0c0"), [1.0, 2.0], [0.1, 0.5], [0.0, 0.0])})
    assert floor_std(m, {}) is m
    f = floor_std(m, {"mean": {"all": 0.3, "tile=r0c0": 0.2}, "other": {"all": 9.0}})
    assert f.metrics["mean"].std.tolist() == [0.3, 0.5]
    r = [Measurement({"mean": MetricValues(("tile=r0c0", "all"), [2.0, v], [0, 0], [0, 0])}) for v in (2.0, 3.0)]
    sp = spread_of(m, r)
    assert sp["mean"][0] == pytest.approx(np.std([1.0, 2.0, 3.0], ddof=1))
    assert sp["mean"][1] == 0.0
    h = [Measurement({"hue": MetricValues(("all",), [v], [0], [0])}) for v in (359.0, 1.0, 0.0)]
    assert spread_of(h[0], h[1:])["hue"][0] == pytest.approx(1.0)  # circular: 359, 1, 0 are 1 degree apart


HANGING = '''
import os, time
from harness.stages import build_backend

def hangs_after_first(image, ctx, strength=0.1):
    path = os.environ["CAL_TEST_COUNTER"]
    n = int(open(path).read())
    open(path, "w").write(str(n + 1))
    if n >= 1:  # every calibration render hangs (the baked render is the first call)
        time.sleep(120)
    return build_backend("denoise", "tv", {"strength": strength})(image, ctx).image
'''


def test_a_hanging_calibration_render_times_out_in_its_worker_and_the_bake_lands(project, capsys):
    import time

    (project / "cal_hanging_backend.py").write_text(HANGING)
    text = suite_text('{ backend = "cal_hanging_backend:hangs_after_first" }').replace('seeds = [1]',
                                                                                    'seeds = [1]\ntimeout_s = 3')
    suite = write_suite(project, "hang", text)
    t0 = time.perf_counter()
    assert cli("bake", suite, project / "b", project / "c", "--calibrate", "2") == 0
    assert time.perf_counter() - t0 < 60  # two renders, each cut at 3 s, not 2 x 120 s
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert "render 1 failed" in out and "render 2 failed" in out and "baked without a spread" in out
    assert "spread" not in doc(project / "b")
