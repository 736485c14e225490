"""The reviewable baseline layout (schema 2): one slice per line, stable order, reasonable size;
schema 1 (one line) still loads; a same-record file is never rewritten, whatever its layout;
the review's verdicts decide which existing files a bake rewrites; approvals stack newest first."""

import json
from pathlib import Path

import numpy as np
import pytest

from harness.errors import BaselineError
from harness.measuring.driver import measure
from harness.suite.baselines import BaselineStore
from harness.suite.baselines.bake import Review
from harness.suite.baselines.document import APPROVALS_KEPT, _dump, approval_entry, read_document
from harness.suite.baselines.manifest import sha256
from harness.suite.baselines.review import Verdict, named_cases

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def store(tmp_path):
    return BaselineStore("mini", tmp_path / "baselines")


def doc(offset=0):
    img = np.random.default_rng(0).integers(0, 200, (48, 48, 3)).astype(np.uint8) + offset
    return {"measurement": measure(img).to_dict(), "stages": {"mask.coverage": 0.05}, "environment": {"threads": 1},
            "pipeline": {"mask": {"backend": "shape", "dilate_px": 2}}}


def approval(n):
    return approval_entry(f"user{n}", f"2026-01-0{n}T00:00:00Z", f"why {n}", f"run{n}", None)


def test_one_slice_per_line_in_a_stable_order(store):
    store.bake([("v/p/s1", doc())])
    text = store.path_for("v/p/s1").read_text()
    lines = text.splitlines()
    saved = json.loads(text)
    assert saved["schema_version"] == 2 and saved["measurement"]["columns"] == ["value", "std", "bias"]
    metrics = saved["measurement"]["metrics"]
    assert list(metrics) == sorted(metrics)
    m = measure(np.random.default_rng(0).integers(0, 200, (48, 48, 3)).astype(np.uint8))
    for name, mv in m.metrics.items():
        assert list(metrics[name]) == list(mv.slices)  # the measured order, not sorted
        at = lines.index(f"   {json.dumps(name)}: {{")
        rows = lines[at + 1: at + 1 + len(mv.slices)]  # each slice's row is one line of its own
        assert [r.split(": [")[0].strip() for r in rows] == [json.dumps(s) for s in mv.slices]
        assert lines[at + 1 + len(mv.slices)].strip() in ("}", "},")
    assert '  "mask": {"backend":"shape","dilate_px":2}' in lines
    assert _dump(read_document(text)) == text  # read back, written again: the same bytes


def test_a_committed_one_line_baseline_loads_and_grows_a_fifth_at_most():
    # model_swap's baselines stay schema 1: they were baked with the reference models on purpose
    old = (ROOT / "baselines" / "model_swap" / "gan_faces_caption" / "faces" / "s1.json").read_bytes()
    assert old.count(b"\n") == 1
    d = read_document(old)
    new = _dump(d).encode()
    slices = sum(len(m["slices"]) for m in d["measurement"]["metrics"].values())
    assert len(new) < 1.2 * len(old) and new.count(b"\n") > slices > 300  # one slice per line
    assert read_document(new)["measurement"] == d["measurement"]
    store = BaselineStore("model_swap", ROOT / "baselines")
    assert store.load("gan_faces_caption/faces/s1").measurement.value("band_power", "band=low ch=Y") == \
        d["measurement"]["metrics"]["band_power"]["values"][0]


def test_a_one_line_file_of_the_same_record_is_left_as_it_is(store):
    d = doc()
    body = json.dumps({"schema_version": 1, "case": "v/p/s1", **d}, sort_keys=True, separators=(",", ":")) + "\n"
    p = store.path_for("v/p/s1")
    p.parent.mkdir(parents=True)
    p.write_text(body)
    store.manifest_file.write({"v/p/s1.json": sha256(body.encode())})
    assert store.load("v/p/s1").pipeline == d["pipeline"]
    assert [c.action for c in store.bake([("v/p/s1", d)], review=Review(approval=approval(1)))] == ["unchanged"]
    assert p.read_text() == body
    forced = Review({"v/p/s1": Verdict(True, "--force")}, approval(1))
    [ch] = store.bake([("v/p/s1", d)], review=forced)
    assert ch.action == "changed" and ch.detail == "--force; same values; only the record changed: its layout"
    assert json.loads(p.read_text())["approvals"] == [approval(1)] and store.verify().ok


def test_the_review_keeps_what_it_judged_and_rewrites_what_changed_since(store):
    store.bake([("v/p/s1", doc())])
    p = store.path_for("v/p/s1")
    before = p.read_bytes()
    kept = Review({"v/p/s1": Verdict(False, "within tolerance: no slice moved", sha256(before))}, approval(2))
    [ch] = store.bake([("v/p/s1", doc(1))], review=kept)
    assert (ch.action, ch.detail) == ("unchanged", "within tolerance: no slice moved") and p.read_bytes() == before
    stale = Review({"v/p/s1": Verdict(False, "within tolerance", "0" * 64)}, approval(2))  # judged another file
    [ch] = store.bake([("v/p/s1", doc(1))], review=stale)
    assert ch.action == "changed" and p.read_bytes() != before


def test_approvals_stack_newest_first_and_the_oldest_drop(store):
    for i in range(1, APPROVALS_KEPT + 3):
        store.bake([("v/p/s1", doc(i))], review=Review(approval=approval(i)))
    got = json.loads(store.path_for("v/p/s1").read_text())["approvals"]
    assert [a["by"] for a in got] == [f"user{i}" for i in range(APPROVALS_KEPT + 2, 2, -1)]
    assert store.load("v/p/s1").approvals == got


def test_calibrated_spread_is_one_slice_per_line_and_round_trips(store):
    d = doc()
    d["spread"] = {m: [0.5] * len(v["slices"]) for m, v in d["measurement"]["metrics"].items()}
    store.bake([("v/p/s1", d)])
    text = store.path_for("v/p/s1").read_text()
    saved = json.loads(text)
    assert saved["spread"]["band_power"]["band=low ch=Y"] == 0.5
    assert read_document(text)["spread"] == d["spread"]
    assert store.load("v/p/s1").spread["band_power"]["band=low ch=Y"] == 0.5


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["measurement"].update(columns=["value", "std"]), "measurement.columns"),
    (lambda d: d["measurement"]["metrics"]["mean"].update({"ch=Y": [1.0, 2.0]}), r"measurement.metrics.mean"),
    (lambda d: d.update(schema_version=3), "schema_version 3, expected one of"),
])
def test_a_malformed_table_is_a_corrupt_baseline_naming_the_file(store, edit, match):
    store.bake([("v/p/s1", doc())])
    p = store.path_for("v/p/s1")
    saved = json.loads(p.read_text())
    edit(saved)
    body = json.dumps(saved)
    p.write_text(body)
    store.manifest_file.write({"v/p/s1.json": sha256(body.encode())})
    with pytest.raises(BaselineError, match=rf"s1\.json: corrupt baseline \(.*{match}"):
        store.load("v/p/s1")


def test_a_slice_named_twice_is_refused_before_writing(store):
    d = doc()
    mv = d["measurement"]["metrics"]["mean"]
    mv["slices"][1] = mv["slices"][0]
    with pytest.raises(ValueError, match=r"metric 'mean': slice 'ch=Y' appears twice"):
        store.bake([("v/p/s1", d)])
    assert not store.dir.exists()


def test_k_names_a_case_or_its_group_not_a_substring():
    ids = ["a/p/s1", "a/p/s2", "a/q/s1", "b/p/s1"]
    assert named_cases("a/p/s1", ids) == {"a/p/s1"}
    assert named_cases("A/P or b", ids) == {"a/p/s1", "a/p/s2"}
    assert named_cases("a", ids) == set() and named_cases(None, ids) == set()
