import json

import numpy as np
import pytest

from harness.pipeline.baselines import BaselineStore
from harness.errors import BaselineError
from harness.measuring.driver import measure


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
    p.write_text(p.read_text().replace('"threads":1', '"threads":2'))
    with pytest.raises(BaselineError, match=r"s1.json: checksum does not match MANIFEST.json"):
        store.load("v/p/s1")


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
