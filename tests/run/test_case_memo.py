"""The case memo (harness.run.case_memo): a recorded case replayed only for the same code, weights,
parameters, inputs, baselines and settings; anything else, or a damaged entry, is a miss."""

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from harness.run import case_memo, identity
from harness.run.case_memo import CaseMemo, pack, unpack
from harness.suite.baselines import BaselineStore
from harness.suite.suites import load_suite

VECTORS = Path(__file__).resolve().parents[2] / "vectors"

SUITE = '''
name = "memo"
seeds = [1, 2]
vectors = ["caption_portrait"]

[compare]
k = {k}

[pipelines.p]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = {dilate} }}
inpaint = {{ backend = "telea" }}
'''


def project_in(tmp):
    from harness.project import load_project

    (tmp / "vectors").mkdir(exist_ok=True)
    shutil.copy(VECTORS / "caption_portrait.toml", tmp / "vectors" / "caption_portrait.toml")
    return load_project().with_overrides(vectors=tmp / "vectors", store=tmp / "store")


def write_suite(tmp, k=4.0, dilate=2, extra=""):
    p = tmp / "memo.toml"
    p.write_text(SUITE.format(k=k, dilate=dilate) + extra)
    return p


def run(tmp, project, **kw):
    from harness.run.runner import run_suite

    kw.setdefault("cache_dir", tmp / "cache")
    return run_suite(load_suite(tmp / "memo.toml", project=project), project=project, out_root=tmp / "reports",
                     baselines_root=tmp / "baselines", **kw)


def bake(run_dir, tmp, suite_name="memo"):
    from harness.report.schema import load_report, read_case_record

    entries = []
    for case in load_report(run_dir).cases:
        _, measurement = read_case_record(run_dir / "cases" / f"{case.id.replace('/', '__')}.json")
        entries.append((case.id, {"measurement": measurement, "stages": case.stages, "environment": {"threads": 99},
                                  "pipeline": {}}))
    return BaselineStore(suite_name, tmp / "baselines").bake(entries)


def rows(run_dir):
    import pyarrow.parquet as pq

    table = pq.read_table(run_dir / "checks.parquet")
    return sorted(json.dumps(r, sort_keys=True) for r in table.to_pylist())


def no_workers(monkeypatch):
    from harness.run.workers import IsolatingExecutor

    def refuse(self, cases, job):
        raise AssertionError(f"a worker was asked to run {[c.id for c in cases]}")

    monkeypatch.setattr(IsolatingExecutor, "run", refuse)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A first run (no baselines: both cases fail), a bake, a cold run against the baselines, a
    memo'd run, and a run whose tolerance changed; each report and folder."""
    tmp = tmp_path_factory.mktemp("memo")
    project = project_in(tmp)
    write_suite(tmp)
    _, first = run(tmp, project)
    bake(first, tmp)
    cold = run(tmp, project)
    mp = pytest.MonkeyPatch()
    try:
        no_workers(mp)
        memod = run(tmp, project)
    finally:
        mp.undo()
    write_suite(tmp, k=0.001)  # a tolerance: a miss, judged afresh
    tighter = run(tmp, project)
    return {"tmp": tmp, "project": project, "first": first, "cold": cold, "memo": memod, "tighter": tighter}


def test_a_memod_run_equals_the_cold_run_check_for_check_without_a_worker(runs):
    (cold, cold_dir), (memod, memo_dir) = runs["cold"], runs["memo"]
    assert [c.config.get("memo") for c in cold.cases] == [None, None]  # the bake changed the baselines: a miss
    assert [c.config["memo"] for c in memod.cases] == [cold_dir.name] * 2
    assert [(c.id, c.status, c.n_checks, c.n_failed) for c in memod.cases] == \
        [(c.id, c.status, c.n_checks, c.n_failed) for c in cold.cases]
    assert rows(memo_dir) == rows(cold_dir) and len(rows(cold_dir)) == sum(c.n_checks for c in cold.cases)
    strip = ("config", "timings")
    for a, b in zip(cold.cases, memod.cases):
        assert {k: v for k, v in a.to_dict().items() if k not in strip} == \
            {k: v for k, v in b.to_dict().items() if k not in strip}


def test_a_hit_says_so_and_claims_no_work_it_did_not_do(runs):
    (cold, _), (memod, memo_dir) = runs["cold"], runs["memo"]
    for a, b in zip(cold.cases, memod.cases):
        assert list(b.timings) == ["memo"] and b.timings["memo"] < 2.0
        assert b.config["memo_timings"] == pytest.approx(a.timings, abs=1e-4)
        assert {k: v for k, v in b.config.items() if not k.startswith("memo")} == a.config
    doc = json.loads((memo_dir / "report.json").read_text())
    assert doc["complete"] is True
    assert not any("case memo" in n for n in memod.notes)  # each case's config says it; the notes are the run's
    drift = "baselines were baked in a different environment: threads 99 -> 1"
    assert drift in cold.notes and drift in memod.notes  # the drift note the cases produced comes along


def test_a_changed_tolerance_is_a_miss_judged_again(runs):
    import pyarrow.parquet as pq

    (tighter, tight_dir), (_, cold_dir) = runs["tighter"], runs["cold"]
    assert [c.config.get("memo") for c in tighter.cases] == [None, None]

    def tolerances(run_dir):
        t = pq.read_table(run_dir / "checks.parquet", columns=["metric", "slice", "case", "tolerance"]).to_pylist()
        return {(r["case"], r["metric"], r["slice"]): r["tolerance"] for r in t if r["metric"] != "expect"}

    tight, cold = tolerances(tight_dir), tolerances(cold_dir)
    assert tight.keys() == cold.keys()
    tighter_now = [k for k in cold if cold[k] is not None and tight[k] is not None and tight[k] < cold[k]]
    assert len(tighter_now) > 100  # judged again with k = 0.001, not replayed with k = 4
    assert not [k for k in cold if cold[k] is not None and tight[k] is not None and tight[k] > cold[k]]


def test_no_cache_means_no_memo(runs, tmp_path):
    report, _ = run(runs["tmp"], runs["project"], cache_dir=None, k_expr="s1")
    assert [c.config.get("memo") for c in report.cases] == [None]


# ------------------------------------------------------------------ the key, part by part


@pytest.fixture()
def keyed(tmp_path, monkeypatch):
    """``key(**changes)``: the key of case ``caption_portrait/p/s1`` (or ``case=``) of a memo opened on
    the suite as written now, with a custom denoise backend whose module and checkpoint the test edits."""
    from harness.run.job import CaseJob
    from harness.run.runner import _Plan

    monkeypatch.setattr(identity, "RACY_SECONDS", 0.0)
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = f"memo_backend_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod}.py").write_text("def f(image, ctx, checkpoint=''):\n    return image.copy()\n")
    (tmp_path / "ck.bin").write_bytes(b"weights 1")
    extra = f'denoise = {{ backend = "{mod}:f", checkpoint = "{tmp_path / "ck.bin"}" }}\n'
    project = project_in(tmp_path)
    state = {"k": 4.0, "dilate": 2}

    def key(case="caption_portrait/p/s1", threads=1):
        write_suite(tmp_path, state["k"], state["dilate"], extra)
        suite = load_suite(tmp_path / "memo.toml", project=project)
        plan = _Plan.make(suite, project, seeds=None, k_expr=None, judge=True, executor="local", workers=1,
                          timeout=None, baselines_root=tmp_path / "baselines")
        plan.environment["threads"] = threads
        job = CaseJob(suite, tmp_path / "run", tmp_path / "cache", suite.threads, seeds=tuple(suite.seeds),
                      store_dir=tmp_path / "store")
        memo = CaseMemo.open(plan, job, plan.environment)
        [c] = [c for c in plan.cases if c.id == case]
        return memo.key(c)

    yield key, state, tmp_path, mod
    sys.modules.pop(mod, None)


def test_the_key_is_stable(keyed):
    key, *_ = keyed
    assert key() == key() and len(key()) == 64


def test_each_part_of_the_key_changes_it(keyed, monkeypatch):
    key, state, tmp, mod = keyed
    seen = {"start": key()}
    seen["seed"] = key(case="caption_portrait/p/s2")
    vec = tmp / "vectors" / "caption_portrait.toml"
    vec.write_text(vec.read_text().replace('"Cmdr. 1984"', '"Cmdr. 1985"'))
    seen["vector file"] = key()
    state["dilate"] = 3
    seen["pipeline parameter"] = key()
    state["k"] = 3.5
    seen["tolerance"] = key()
    (tmp / "ck.bin").write_bytes(b"weights 2")
    seen["backend weights"] = key()
    (tmp / f"{mod}.py").write_text("def f(image, ctx, checkpoint=''):\n    return image.copy()  # v2\n")
    seen["backend code"] = key()
    seen["threads"] = key(threads=2)
    base = tmp / "baselines" / "memo" / "caption_portrait" / "p" / "s1.json"
    base.parent.mkdir(parents=True)
    base.write_text("{}")
    seen["baseline file"] = key()
    base.write_text('{"schema_version": 0}')
    seen["baseline content"] = key()
    monkeypatch.setattr(identity, "harness_code_digest", lambda: "0" * 64)
    seen["harness code"] = key()
    monkeypatch.setattr(identity, "measuring_code_digest", lambda: "1" * 64)
    seen["measuring code"] = key()
    assert None not in seen.values()
    assert len(set(seen.values())) == len(seen), [k for k in seen if list(seen.values()).count(seen[k]) > 1]


def test_a_case_that_cannot_be_keyed_is_a_miss(keyed, monkeypatch):
    key, *_ = keyed

    def broken(*a, **kw):
        raise OSError("unreadable weights")

    monkeypatch.setattr(identity, "stage_identity", broken)
    assert key() is None


# ------------------------------------------------------------------ entries


def test_an_entry_round_trips_and_anything_else_is_refused():
    data = pack("k" * 64, "run-1", "v/p/s1", ["threads 2 -> 1"], b"PART", b'{"case": {}}', b"NPZ")
    hit = unpack("k" * 64, data)
    assert (hit.run, hit.case_id, hit.drift, hit.part, hit.record, hit.measure) == \
        ("run-1", "v/p/s1", ["threads 2 -> 1"], b"PART", {"case": {}}, b"NPZ")
    with pytest.raises(ValueError, match="another key"):
        unpack("j" * 64, data)
    with pytest.raises(ValueError, match="checksum"):
        unpack("k" * 64, data[:-1])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        unpack("k" * 64, bytes(flipped))
    with pytest.raises(ValueError, match="not a case memo"):
        unpack("k" * 64, b"")


def open_memo(tmp, project):
    """The memo a run of ``tmp``'s suite would open, and its cases by id."""
    from harness.run.job import CaseJob
    from harness.run.runner import _Plan

    suite = load_suite(tmp / "memo.toml", project=project)
    plan = _Plan.make(suite, project, seeds=None, k_expr=None, judge=True, executor="local", workers=1,
                      timeout=None, baselines_root=tmp / "baselines")
    from harness.models.diffusers_loading import auto_device_known

    job = CaseJob(suite, tmp / "run", tmp / "cache", suite.threads, tuple(str(p) for p in project.pythonpath),
                  seeds=tuple(suite.seeds), store_dir=project.store_root.resolve(), auto_device=auto_device_known())
    return CaseMemo.open(plan, job, plan.environment), {c.id: c for c in plan.cases}


@pytest.fixture()
def world(tmp_path):
    """One run of the suite (no baselines: its 2 cases fail and are kept), its memo and cases."""
    project = project_in(tmp_path)
    write_suite(tmp_path)
    run(tmp_path, project)
    memo, cases = open_memo(tmp_path, project)
    return tmp_path, project, memo, cases


def test_a_damaged_entry_is_a_miss_and_removed(world):
    tmp, project, memo, cases = world
    case = cases["caption_portrait/p/s1"]
    assert memo.lookup(case) is not None
    p = memo.path_for(memo.key(case))
    data = p.read_bytes()
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    for damage in (data[: len(data) // 2], bytes(flipped), b"", data.replace(b"caption_portrait/p/s1",
                                                                            b"caption_portrait/p/s9")):
        p.write_bytes(damage)
        assert memo.lookup(case) is None and not p.exists()
    p.write_bytes(data[:-1])
    report, _ = run(tmp, project)  # a real run: the damaged case runs, the other one is replayed
    assert [c.config.get("memo") for c in report.cases] == [None, report.cases[1].config["memo"]]
    assert report.cases[1].config["memo"] and report.status == "fail"


def test_a_hit_whose_images_left_the_store_runs_again(world):
    tmp, project, memo, cases = world
    case = cases["caption_portrait/p/s2"]
    assert memo.lookup(case) is not None
    shutil.rmtree(project.store_root / "objects")
    assert memo.lookup(case) is None and memo.path_for(memo.key(case)).exists()  # the entry is fine


def test_the_folder_is_bounded_least_recently_used_first(tmp_path):
    memo = CaseMemo(tmp_path, 250, {}, None, None)
    import os

    for i, name in enumerate("abc"):
        p = tmp_path / f"{name * 64}.memo"
        p.write_bytes(b"x" * 100)
        os.utime(p, ns=(i * 10**9, i * 10**9))
    assert memo.evict() == ["a" * 64]  # 300 bytes > 250: the oldest goes, down to 90 % of it (225)
    assert sorted(p.name[0] for p in tmp_path.glob("*.memo")) == ["b", "c"]
    assert memo.evict() == []


# ------------------------------------------------------------------ file digests across processes


def test_saved_file_digests_are_adopted_only_while_the_file_is_unchanged(tmp_path, monkeypatch):
    from harness.run.digest_memo import load_digests, save_digests

    monkeypatch.setattr(identity, "RACY_SECONDS", 0.0)
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    d1 = identity.file_digest(f)
    save_digests(tmp_path / "d.json")
    identity.DIGESTS.pop(str(f))
    assert load_digests(tmp_path / "d.json") >= 1
    n = identity.STATS["files_hashed"]
    assert identity.file_digest(f) == d1 and identity.STATS["files_hashed"] == n  # adopted: not read
    f.write_bytes(b"weightz")  # same size; the signature (ctime, mtime) moves
    assert identity.file_digest(f) != d1 and identity.STATS["files_hashed"] == n + 1
    (tmp_path / "d.json").write_text((tmp_path / "d.json").read_text().replace(d1, "0" * 64))
    assert load_digests(tmp_path / "d.json") == 0  # its checksum no longer holds: nothing adopted


def test_the_memo_is_off_where_it_cannot_be_sure(keyed, monkeypatch):
    """No cache folder, bake (no judging), distribution mode and rerun_check suites: no memo."""
    from types import SimpleNamespace

    suite = SimpleNamespace(mode="paired", rerun_check=False)
    plan = SimpleNamespace(suite=suite, judge=True)
    job = SimpleNamespace(cache_dir=None)
    assert CaseMemo.open(plan, job, {}) is None
    job.cache_dir = Path("/nonexistent")
    for change in ({"judge": False}, {"mode": "distribution"}, {"rerun_check": True}):
        p = SimpleNamespace(suite=SimpleNamespace(**{**vars(suite), **{k: v for k, v in change.items()
                                                                        if k != "judge"}}),
                            judge=change.get("judge", True))
        assert CaseMemo.open(p, job, {}) is None, change
    assert case_memo.MEMO_SCHEMA == "harness-case-memo/1"


def test_two_concurrent_runs_share_the_memo_safely(tmp_path):
    """Two `harness run`s of one suite with one cache at the same time: both complete, every entry
    they leave reads back, and a third run replays both cases from it."""
    import os
    import subprocess

    write_suite(tmp_path)
    args = ["run", "--suite", str(tmp_path / "memo.toml"), "--baselines", str(tmp_path / "baselines"), "--cache",
            str(tmp_path / "cache"), "--store", str(tmp_path / "store"), "-q"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", *args, "--out", str(tmp_path / f"out{i}")],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [1, 1], [r[1][-500:] for r in results]  # no baselines: fail, not error
    entries = sorted((tmp_path / "cache" / "memo").glob("*.memo"))
    assert len(entries) == 2
    for p in entries:
        data = p.read_bytes()
        assert unpack(p.name[: -len(".memo")], data).run in {r[0].strip().splitlines()[-1].rsplit("/", 1)[-1]
                                                            for r in results}
    third = subprocess.run([sys.executable, "-m", "harness.cli", *args, "--out", str(tmp_path / "out3")],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    run_dir = Path(third.stdout.strip().splitlines()[-1])
    doc = json.loads((run_dir / "report.json").read_text())
    assert third.returncode == 1 and [bool(c["config"].get("memo")) for c in doc["cases"]] == [True, True]


def test_replay_tells_the_runner_of_each_hit_and_stops_when_it_says_so(world):
    """``landed`` is the runner's per-case hook (its progress line, --maxfail): True stops the replay
    and nothing is left to execute."""
    from contextlib import nullcontext
    from types import SimpleNamespace

    tmp, project, memo, cases = world
    written, told = [], []
    folder = SimpleNamespace(replay=lambda cr, part, measurement: written.append(cr.id))
    run = SimpleNamespace(signals=SimpleNamespace(deferred=nullcontext), folder=folder, recorded={}, drift=set(),
                          by_id=cases, say=told.append)
    ordered = [cases["caption_portrait/p/s1"], cases["caption_portrait/p/s2"]]
    assert case_memo.replay(memo, run, ordered, landed=lambda cr: told.append(cr.id) or True) == []
    assert written == ["caption_portrait/p/s1"] and told[0] == "caption_portrait/p/s1"
    assert list(run.recorded) == ["caption_portrait/p/s1"] and run.recorded["caption_portrait/p/s1"].status == "fail"
    written.clear()
    assert case_memo.replay(memo, run, ordered, landed=lambda cr: False) == [] and len(written) == 2


def test_a_fully_memod_run_starts_no_worker_and_imports_nothing_heavy(tmp_path):
    """A run as `harness run` makes it (prewarm, then run_suite), twice: the second replays every case
    without a fork server, torch, numba, scipy.stats or pandas (the views a CLI renders afterwards
    are not part of it: an index.html of failing cases draws figures)."""
    import os
    import subprocess
    import textwrap

    write_suite(tmp_path)
    code = textwrap.dedent(f"""
        import sys, multiprocessing.forkserver as mpfs
        from pathlib import Path
        from harness.run.runner import run_suite
        from harness.run.workerstart import prewarm
        from harness.suite.suites import load_suite
        tmp = Path({str(tmp_path)!r})
        suite = load_suite(tmp / "memo.toml")
        prewarm(suite.threads)
        report, _ = run_suite(suite, out_root=tmp / "r", baselines_root=tmp / "b", cache_dir=tmp / "c")
        heavy = sorted(m for m in ("torch", "numba", "scipy.stats", "pandas") if m in sys.modules)
        print(report.status, mpfs._forkserver._forkserver_pid is None, heavy or "none")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    outs = [subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    assert outs[0].stdout.split()[-3:][:2] == ["fail", "False"], outs[0].stderr[-2000:]  # cold: a worker ran
    assert outs[1].stdout.split()[-3:] == ["fail", "True", "none"], outs[1].stderr[-2000:]
