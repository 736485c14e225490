import json
import os

import numpy as np
import pytest

from harness.errors import BaselineError
from harness.measuring.driver import measure
from harness.suite.baselines import BaselineStore


@pytest.fixture()
def store(tmp_path):
    return BaselineStore("mini", tmp_path / "baselines")


def doc(offset=0):
    img = np.random.default_rng(0).integers(0, 200, (48, 48, 3)).astype(np.uint8) + offset
    return {"measurement": measure(img).to_dict(), "stages": {"mask.coverage": 0.05}, "environment": {"threads": 1},
            "pipeline": {}}


def test_bake_then_load_round_trip(store):
    changes = store.bake([("v/p/s1", doc())])
    assert [(c.case_id, c.action) for c in changes] == [("v/p/s1", "new")]
    b = store.load("v/p/s1")
    assert b.stages == {"mask.coverage": 0.05}
    assert store.case_ids() == ["v/p/s1"]
    assert store.load("v/p/s2") is None  # missing: the runner turns this into a failing case


def test_rebake_reports_unchanged_changed_and_new_only(store):
    store.bake([("v/p/s1", doc())])
    assert store.bake([("v/p/s1", doc())])[0].action == "unchanged"
    assert store.bake([("v/p/s1", doc(40))], new_only=True)[0].action == "skipped"
    ch = store.bake([("v/p/s1", doc(40))])[0]
    assert ch.action == "changed" and "beyond tolerance" in ch.detail


def test_tampered_file_is_an_error_naming_it(store):
    store.bake([("v/p/s1", doc())])
    p = store.path_for("v/p/s1")
    p.write_text(p.read_text().replace('"threads": 1', '"threads": 2'))
    with pytest.raises(BaselineError, match=r"s1.json: checksum does not match MANIFEST.json"):
        store.load("v/p/s1")


def test_images_after_a_load_reads_no_document_again_unless_the_file_changed(store, monkeypatch):
    from harness.suite.baselines import store as store_module

    ref = "sha256:" + "a" * 64
    store.bake([("v/p/s1", {**doc(), "images": {"output": ref}})])
    assert store.load("v/p/s1").images == {"output": ref}
    real = store_module.read_document
    monkeypatch.setattr(store_module, "read_document", lambda data: pytest.fail("parsed again"))
    assert store.images("v/p/s1") == {"output": ref}
    assert store.load("v/p/s1").images == {"output": ref}  # the same bytes again: not parsed again either
    p = store.path_for("v/p/s1")
    p.write_text(p.read_text().replace('"threads": 1', '"threads": 2'))  # tampered after the load
    with pytest.raises(BaselineError, match=r"s1.json: checksum does not match MANIFEST.json"):
        store.images("v/p/s1")
    with pytest.raises(BaselineError, match=r"s1.json: checksum does not match MANIFEST.json"):
        store.load("v/p/s1")
    monkeypatch.setattr(store_module, "read_document", real)
    p.unlink()
    store.bake([("v/p/s1", {**doc(), "images": {"output": ref, "mask": ref}})])  # baked again
    assert store.images("v/p/s1") == {"output": ref, "mask": ref}
    assert store.load("v/p/s1").images == {"output": ref, "mask": ref}


def test_corrupt_file_and_manifest_are_errors(store):
    store.bake([("v/p/s1", doc())])
    m = json.loads(store.manifest_path.read_text())
    store.path_for("v/p/s1").write_text("{not json")
    import hashlib

    m["files"]["v/p/s1.json"] = hashlib.sha256(b"{not json").hexdigest()
    store.manifest_path.write_text(json.dumps(m))
    with pytest.raises(BaselineError, match="corrupt baseline"):
        store.load("v/p/s1")
    store.manifest_path.write_text("[]")
    with pytest.raises(BaselineError, match="corrupt baseline manifest"):
        store.load("v/p/s1")


def test_file_missing_from_disk_or_manifest(store):
    store.bake([("v/p/s1", doc()), ("v/p/s2", doc())])
    store.path_for("v/p/s1").unlink()
    with pytest.raises(BaselineError, match="listed in MANIFEST.json but missing on disk"):
        store.load("v/p/s1")
    stray = store.path_for("v/p/s9")
    stray.write_text("{}")
    with pytest.raises(BaselineError, match="not in .*MANIFEST.json"):
        store.load("v/p/s9")


def test_obsolete_respects_k_filter_and_prune(store):
    store.bake([("a/p/s1", doc()), ("b/p/s1", doc())])
    assert store.obsolete({"a/p/s1"}) == ["b/p/s1"]
    assert store.obsolete({"a/p/s1"}, lambda c: c.startswith("a/")) == []
    changes = store.bake([], prune=["b/p/s1"])
    assert [c.action for c in changes] == ["removed"] and not store.path_for("b/p/s1").exists()
    assert store.case_ids() == ["a/p/s1"]


def test_writes_are_atomic_no_temp_files_left(store):
    store.bake([("v/p/s1", doc())])
    leftovers = [p for p in store.dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


# -- reproducible documents -----------------------------------------------------------

RUN_ENV = {"python": "3.11.7", "platform": "Linux-6.1-x86_64", "machine": "x86_64", "device": "cpu", "threads": 1,
           "versions": {"harness": "0.1.0", "numpy": "2.4.6"}, "git_sha": "6dfd9730", "executor": "local",
           "workers": 1, "suite_file": "/home/me/proj/suites/mini.toml", "project": {"root": "/home/me/proj"},
           "seeds": [1, 2, 3], "k": None}


def test_the_document_keeps_only_what_made_the_values(store):
    d = doc()
    d["environment"] = RUN_ENV
    d["stages"] = {"mask.coverage": 0.1 + 0.2, "detect.detected_px": 771}
    d["pipeline"] = {"mask": {"backend": "shape", "dilate_px": 2}}
    store.bake([("v/p/s1", d)])
    text = store.path_for("v/p/s1").read_text()
    saved = json.loads(text)
    assert sorted(saved) == ["case", "environment", "measurement", "pipeline", "schema_version", "stages"]
    assert saved["environment"] == {"machine": "x86_64", "device": "cpu", "threads": 1,
                                    "versions": {"numpy": "2.4.6"}}
    assert saved["stages"] == {"mask.coverage": 0.3, "detect.detected_px": 771.0}
    assert saved["pipeline"] == d["pipeline"] and saved["schema_version"] == 2
    for gone in ("/home/me", "6dfd9730", "git_sha", "Linux-", "3.11.7", "suite_file", "workers"):
        assert gone not in text


def test_rebake_from_another_run_of_the_same_values_is_byte_identical(store):
    first = doc()
    first["environment"] = RUN_ENV
    store.bake([("v/p/s1", first)])
    before = store.path_for("v/p/s1").read_bytes()
    second = doc()
    second["environment"] = {**RUN_ENV, "git_sha": "0123abcd", "platform": "Linux-6.2", "python": "3.11.9",
                             "suite_file": "/ci/build/7/mini.toml", "workers": 4, "k": "s1", "seeds": [1],
                             "versions": {"harness": "0.2.0.dev3+g0123abcd", "numpy": "2.4.6"}}
    second["stages"] = {"mask.coverage": 0.05 + 1e-12}  # float noise below the rounding
    assert [c.action for c in store.bake([("v/p/s1", second)])] == ["unchanged"]
    assert store.path_for("v/p/s1").read_bytes() == before


def test_old_documents_still_load_and_a_rebake_says_only_the_record_changed(store):
    import hashlib

    d = doc()
    old = json.dumps({"schema_version": 1, "case": "v/p/s1", **d, "environment": RUN_ENV},
                     sort_keys=True, separators=(",", ":")) + "\n"
    p = store.path_for("v/p/s1")
    p.parent.mkdir(parents=True)
    p.write_text(old)
    store.manifest_path.write_text(json.dumps({"schema_version": 1, "suite": "mini",
                                               "files": {"v/p/s1.json": hashlib.sha256(old.encode()).hexdigest()}}))
    assert store.load("v/p/s1").environment["git_sha"] == "6dfd9730"
    ch = store.bake([("v/p/s1", {**d, "environment": RUN_ENV})])[0]
    assert ch.action == "changed"
    assert ch.detail.startswith("same values; only the record changed: environment (")
    assert "git_sha" in ch.detail and "suite_file" in ch.detail
    assert store.bake([("v/p/s1", {**d, "environment": RUN_ENV})])[0].action == "unchanged"


def test_a_tampered_file_is_rewritten_not_called_unchanged(store):
    store.bake([("v/p/s1", doc())])
    p = store.path_for("v/p/s1")
    good = p.read_bytes()
    p.write_bytes(good.replace(b'"threads": 1', b'"threads": 2'))
    ch = store.bake([("v/p/s1", doc())])[0]
    assert ch.action == "changed" and "did not match MANIFEST.json" in ch.detail
    assert p.read_bytes() == good and store.load("v/p/s1")


# -- strays, temp files, verify --------------------------------------------------------

def test_strays_are_reported_and_temp_files_cleaned_under_the_lock(store):
    store.bake([("v/p/s1", doc())])
    folder = store.path_for("v/p/s1").parent
    stray, backup, temp = folder / "s7.json", folder / "s1.json~", folder / ".s1.json.abcd1234.tmp"
    for f in (stray, backup, temp):
        f.write_text("{}")
    assert store.strays() == sorted([stray, backup, temp])
    check = store.verify()
    assert not check.ok and check.strays == sorted([stray, backup, temp]) and check.temps == [temp]
    changes = store.bake([("v/p/s2", doc())])
    assert [(c.action, c.path) for c in changes] == [("cleaned", temp), ("new", store.path_for("v/p/s2")),
                                                     ("stray", backup), ("stray", stray)]
    assert not temp.exists() and stray.exists() and backup.exists()  # strays are the user's to delete
    assert store.strays() == [backup, stray]
    assert BaselineStore("mini", store.root / "nowhere").strays() == []


def test_verify_reports_missing_and_mismatched_and_repair_removes_temps(store):
    store.bake([("v/p/s1", doc()), ("v/p/s2", doc(1)), ("v/p/s3", doc(2))])
    store.path_for("v/p/s1").unlink()
    store.path_for("v/p/s2").write_text("{}")
    temp = store.dir / ".MANIFEST.json.zz11yy22.tmp"
    temp.write_text("{")
    check = store.verify()
    assert check.missing == [store.path_for("v/p/s1")] and check.mismatched == [store.path_for("v/p/s2")]
    assert check.verified == [store.path_for("v/p/s3")] and check.temps == [temp] and not check.ok
    check = store.verify(repair=True)
    assert [c.action for c in check.repaired] == ["cleaned"] and check.temps == [] and not temp.exists()
    assert check.missing and check.mismatched  # repair never rewrites a baseline: that is a bake's job
    assert [c.action for c in store.bake([])] == ["missing", "mismatch"]


# -- crash safety: a pending record, and a kill at every point --------------------------

def test_an_interrupted_bake_is_finished_by_the_next_one(store):
    import hashlib

    store.bake([("v/p/s1", doc()), ("v/p/s2", doc()), ("v/p/s3", doc())])
    files = store.manifest()
    # as if killed after step 3 for s1 (written) and s4 (new), before it for s2, mid-delete of s3
    new1 = store.path_for("v/p/s1").read_text().replace('"threads": 1', '"threads": 4')
    store.path_for("v/p/s1").write_text(new1)
    new4 = new1.replace("v/p/s1", "v/p/s4")
    store.path_for("v/p/s4").write_text(new4)
    store.path_for("v/p/s3").unlink()
    def sha(t):
        return hashlib.sha256(t.encode()).hexdigest()

    pending = {"v/p/s1.json": sha(new1), "v/p/s2.json": sha("never written"), "v/p/s3.json": None,
               "v/p/s4.json": sha(new4)}
    store.manifest_file.write(files, pending)
    with pytest.raises(BaselineError, match="s1.json: checksum does not match MANIFEST.json; an interrupted "
                                            r"`harness bake` left it unrecorded \(run `harness bake` again"):
        store.load("v/p/s1")
    with pytest.raises(BaselineError, match="s4.json: not in .*an interrupted `harness bake`"):
        store.load("v/p/s4")
    assert store.load("v/p/s2")  # untouched: still fine
    assert store.verify().pending == [store.path_for(f"v/p/s{i}") for i in (1, 2, 3, 4)]
    changes = store.bake([])
    assert [(c.action, c.case_id) for c in changes] == [("recovered", "v/p/s1.json"), ("recovered", "v/p/s3.json"),
                                                        ("recovered", "v/p/s4.json")]
    assert store.case_ids() == ["v/p/s1", "v/p/s2", "v/p/s4"] and store.verify().ok
    assert "pending" not in json.loads(store.manifest_path.read_text())
    assert store.load("v/p/s1").environment == {"threads": 4}


class Killed(BaseException):
    """Stands for SIGKILL: no handler runs, temp files stay."""


def snapshot_invariant(store):
    """After a kill, before any repair: every file on disk matches the manifest's ``files``,
    or its ``pending`` sum, or is a temp file / an unlisted file that verify() reports."""
    import hashlib

    raw = json.loads(store.manifest_path.read_text()) if store.manifest_path.exists() else {"files": {}}
    files, pending = raw["files"], raw.get("pending", {})
    check = store.verify()
    for p in (q for q in store.dir.rglob("*") if q.is_file() and q.name not in ("MANIFEST.json", ".lock")):
        rel = p.relative_to(store.dir).as_posix()
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        assert sha == files.get(rel) or sha == pending.get(rel) or p in check.strays, rel
    for rel in files:
        assert (store.dir / rel).exists() or (rel in pending and pending[rel] is None), rel
    return files, pending, check


@pytest.mark.parametrize("k", range(1, 6))
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_at_any_write_leaves_a_consistent_store(store, monkeypatch, k, when):
    from harness import fsio

    store.bake([(f"v/p/s{i}", doc()) for i in (1, 2, 3, 4)])
    target = [("v/p/s1", doc(7)), ("v/p/s2", doc(7)), ("v/p/s5", doc(7))]
    n = {"replace": 0}
    real = os.replace

    def replace(src, dst):  # the 5 renames: intent manifest, s1, s2, s5, committed manifest
        n["replace"] += 1
        if n["replace"] == k and when == "before":
            raise Killed
        real(src, dst)
        if n["replace"] == k:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(fsio.os, "replace", replace)
        m.setattr(fsio, "_discard", lambda tmp: None)
        with pytest.raises(Killed):
            store.bake(target, prune=["v/p/s4"])
    store.lock_path.unlink(missing_ok=True)  # the killed process's lock file (its lock died with it)
    _, pending, _ = snapshot_invariant(store)
    assert bool(pending) == (1 < k + (when == "after") <= 5)  # between intent and commit only
    repaired = store.verify(repair=True)
    assert repaired.ok, repaired
    for cid in store.case_ids():
        assert store.load(cid)
    changes = store.bake(target, prune=["v/p/s4"])
    assert store.case_ids() == ["v/p/s1", "v/p/s2", "v/p/s3", "v/p/s5"] and store.verify().ok
    assert all(c.action in ("changed", "new", "unchanged", "removed") for c in changes)
    assert store.bake(target) == [c for c in store.bake(target)]  # and from then on, nothing moves
    assert {c.action for c in store.bake(target)} == {"unchanged"}


CHILD = r"""
import json, sys
from harness.suite.baselines import BaselineStore
root, docs, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = json.load(open(docs))

def doc(i):
    d = json.loads(json.dumps(base))
    for mv in d["measurement"]["metrics"].values():
        mv["values"] = [v + rnd * 0.5 + i * 1e-3 for v in mv["values"]]
    return d

entries = [(f"v{i % 3}/p/s{i}", doc(i)) for i in range(24)]
print("go", flush=True)
BaselineStore("mini", root).bake(entries, prune=[f"v{i % 3}/p/s{i}" for i in range(24, 30)])
"""


def test_sigkill_at_random_points_never_leaves_an_undescribed_file(store, tmp_path):
    import random
    import signal
    import subprocess
    import sys
    import time

    docs = tmp_path / "doc.json"
    docs.write_text(json.dumps(doc()))
    store.bake([(f"v{i % 3}/p/s{i}", doc()) for i in range(30)])

    def start(rnd):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(store.root), str(docs), str(rnd)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "go\n", p.stderr.read()
        return p

    p = start(0)
    t0 = time.monotonic()
    assert p.wait(60) == 0, p.stderr.read()
    full = time.monotonic() - t0  # the bake itself: planning, then the writes
    rng = random.Random(8)
    mid_write = 0
    for rnd in range(1, 11):
        p = start(rnd)
        time.sleep(rng.uniform(0, full))
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        p.stdout.close(), p.stderr.close()
        _, pending, check = snapshot_invariant(store)
        mid_write += bool(pending or check.temps)
        repaired = store.verify(repair=True)
        assert repaired.ok, (rnd, repaired)
        for cid in store.case_ids():
            assert store.load(cid) is not None
    print(f"{mid_write} of 10 kills landed between the intent and the commit")


# -- concurrency ---------------------------------------------------------------------

def _bake_in_child(root, entries, barrier):
    try:
        barrier.wait(30)
        BaselineStore("mini", root).bake(entries)
    except BaseException as exc:  # noqa: BLE001
        print(f"child failed: {exc!r}", flush=True)
        os._exit(1)
    os._exit(0)


def test_two_processes_baking_at_once_both_land(tmp_path):
    """Disjoint cases plus one case both write, started together, 20 times: the manifest
    lists exactly the union with the checksums of what is on disk, and every case loads."""
    import hashlib
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    a = [(f"a{i}/p/s1", doc()) for i in range(6)] + [("both/p/s1", doc(1))]
    b = [(f"b{i}/p/s1", doc()) for i in range(6)] + [("both/p/s1", doc(2))]
    for round_ in range(20):
        root = tmp_path / f"r{round_}"
        if round_ % 2:  # an existing store too, not only a first bake
            BaselineStore("mini", root).bake([("old/p/s1", doc())])
        barrier = ctx.Barrier(2)
        procs = [ctx.Process(target=_bake_in_child, args=(root, e, barrier)) for e in (a, b)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0], round_
        s = BaselineStore("mini", root)
        want = {s.rel(c) for c, _ in a + b} | ({"old/p/s1.json"} if round_ % 2 else set())
        files = s.manifest()
        assert set(files) == want, round_
        for rel, digest in files.items():
            assert hashlib.sha256((s.dir / rel).read_bytes()).hexdigest() == digest, (round_, rel)
        for cid in s.case_ids():
            assert s.load(cid) is not None
        assert s.verify().ok and not s.lock_path.exists()


def test_the_lock_is_held_for_the_whole_write_phase(store):
    import threading
    import time

    from harness.fsio import file_lock

    store.dir.mkdir(parents=True)
    told, result = [], []
    t = threading.Thread(target=lambda: result.append(store.bake([("v/p/s1", doc())], on_wait=told.append)))
    with file_lock(store.lock_path):
        t.start()
        time.sleep(0.3)
        assert result == [] and not store.path_for("v/p/s1").exists() and not store.manifest_path.exists()
    t.join(30)
    assert told and told[0].startswith("waiting for the lock ") and [c.action for c in result[0]] == ["new"]


# -- the file system refuses -----------------------------------------------------------

@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
@pytest.mark.parametrize("stays_full", [True, False])
def test_a_refused_write_is_a_baseline_error_naming_the_path_and_the_store_stays_consistent(store, monkeypatch,
                                                                                          fail_at, stays_full):
    import errno

    from harness import fsio
    from harness.suite.baselines import BaselineWriteError

    store.bake([("v/p/s1", doc())])
    n = {"replace": 0}
    real = os.replace

    def replace(src, dst):  # 1 intent, 2 s1, 3 s2, 4 commit, then the recovery's manifest write
        n["replace"] += 1
        if n["replace"] == fail_at or (stays_full and n["replace"] > fail_at):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(fsio.os, "replace", replace)
        with pytest.raises(BaselineWriteError) as info:
            store.bake([("v/p/s1", doc(5)), ("v/p/s2", doc(5))])
    msg = str(info.value)
    assert "No space left on device; cannot write the baselines in " in msg and "\n" not in msg
    assert msg.startswith(str(store.dir))  # names the file it could not write
    assert len(info.value.changes) == max(0, min(fail_at, 4) - 2)
    assert not list(store.dir.rglob("*.tmp")) and not store.lock_path.exists()
    check = store.verify()
    assert not check.missing and not check.temps
    # a file written but not yet recorded (the disk stayed full) is described by the pending record
    assert set(check.mismatched) <= set(check.pending) and bool(check.pending) == (stays_full and fail_at > 1)
    assert store.verify(repair=True).ok
    assert store.load("v/p/s1") is not None
