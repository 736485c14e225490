"""The image store (harness.run.store): references, idempotent atomic puts, resolution, retention."""

import hashlib
import json
import multiprocessing
import os

import numpy as np
import pytest

from harness.errors import InputError
from harness.run.store import (ImageStore, check_ref, is_ref, missing_reference_notes, reference_images,
                               refs_in_baselines, resolve_artifact, store_root_of)


def image(seed: int, shape=(48, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_put_names_the_object_by_the_sha256_of_its_png_and_a_second_put_writes_nothing(tmp_path):
    from harness.imageio import encode_png

    store = ImageStore(tmp_path / "s")
    img = image(1)
    ref = store.put(img)
    data = encode_png(img)
    assert ref == "sha256:" + hashlib.sha256(data).hexdigest()
    p = store.path(ref)
    assert p == tmp_path / "s" / "objects" / ref[7:9] / f"{ref[9:]}.png" and p.read_bytes() == data
    ino = p.stat().st_ino
    assert store.put(img.copy()) == ref and store.put_png(data) == ref
    assert p.stat().st_ino == ino  # not rewritten
    assert store.has(ref) and not store.has("sha256:" + "0" * 64)
    np.testing.assert_array_equal(store.load(ref), img)
    assert store.put(img.astype(np.float32) / 255.0) == ref  # the same 8-bit image, the same object
    assert len(list(store.objects())) == 1


def test_a_changed_index_entry_or_a_lost_object_never_serves_a_wrong_reference(tmp_path):
    store = ImageStore(tmp_path)
    img = image(2)
    ref = store.put(img)
    store.path(ref).unlink()  # pruned or deleted by hand: put writes it again
    assert store.put(img) == ref and store.has(ref)
    for f in (tmp_path / "index").rglob("*"):
        if f.is_file():
            f.write_text("garbage")
    assert store.put(img) == ref


def test_bad_references_are_clear_errors(tmp_path):
    store = ImageStore(tmp_path)
    for bad in ("sha256:" + "A" * 64, "sha256:abc", "md5:" + "0" * 64, "../../etc/passwd", "", None):
        with pytest.raises(InputError, match=r"not an image store reference \(expected 'sha256:' and 64 lowercase hex"):
            store.path(bad)
        assert not is_ref(bad)
    assert check_ref("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    with pytest.raises(InputError, match="not in the image store"):
        store.load("sha256:" + "b" * 64)


def _put_many(root: str, seeds: list[int], out) -> None:
    store = ImageStore(root)
    out.put([store.put(image(s)) for s in seeds for _ in range(5)])


def test_two_processes_putting_the_same_images_at_once_leave_valid_objects(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_put_many, args=(str(tmp_path), [3, 4, 5, 6], q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1] and len(set(results[0])) == 4
    store = ImageStore(tmp_path)
    for ref in set(results[0]):
        assert "sha256:" + hashlib.sha256(store.path(ref).read_bytes()).hexdigest() == ref
    assert [p.name for p in tmp_path.rglob("*.tmp")] == []  # no temporary file left behind


def test_resolve_artifact_reads_references_and_old_run_folder_paths_and_nothing_else(tmp_path):
    from harness.imageio import save_png

    store = ImageStore(tmp_path / "store")
    ref = store.put(image(7))
    run = tmp_path / "run"
    save_png(run / "artifacts" / "c" / "output.png", image(8))
    (tmp_path / "outside.png").write_bytes(b"x")
    assert resolve_artifact(ref, run, store.root) == store.path(ref)
    assert resolve_artifact("artifacts/c/output.png", run, None) == (run / "artifacts/c/output.png").resolve()
    for value, root in ((ref, None), ("sha256:" + "c" * 64, store.root), ("sha256:XYZ", store.root),
                        ("../outside.png", store.root), (str(tmp_path / "outside.png"), store.root),
                        ("artifacts/c/gone.png", store.root), ("", store.root), (None, store.root)):
        assert resolve_artifact(value, run, root) is None, value
    assert store_root_of({"store": str(store.root)}) == store.root and store_root_of({}) is None


def test_reference_images_keeps_references_and_stores_an_old_runs_pngs(tmp_path):
    from harness.imageio import save_png

    run_store, store = ImageStore(tmp_path / "a"), ImageStore(tmp_path / "b")
    ref = run_store.put(image(9))
    save_png(tmp_path / "run" / "artifacts" / "x" / "mask.png", image(10, (48, 64)))
    got = reference_images({"output": ref, "mask": "artifacts/x/mask.png", "gone": "artifacts/x/gone.png"},
                           tmp_path / "run", store, run_store.root)
    assert sorted(got) == ["mask", "output"] and got["output"] == ref and store.has(ref)  # copied over
    assert store.path(got["mask"]).read_bytes() == (tmp_path / "run/artifacts/x/mask.png").read_bytes()


def _aged(store: ImageStore, n: int) -> list[str]:
    """``n`` objects of about the same size, the first the least recently used."""
    refs = [store.put(image(100 + i)) for i in range(n)]
    for age, ref in enumerate(refs):
        t = 1_700_000_000 + age * 100
        os.utime(store.path(ref), (t, t))
    return refs


def test_prune_removes_least_recently_used_first_but_never_a_baselines_reference(tmp_path):
    store = ImageStore(tmp_path / "store")
    refs = _aged(store, 6)
    size = store.path(refs[0]).stat().st_size
    base = tmp_path / "baselines" / "smoke" / "v" / "p"
    base.mkdir(parents=True)
    (base / "s1.json").write_text(json.dumps({"images": {"output": refs[0], "mask": refs[1]}}))
    keep = refs_in_baselines(tmp_path / "baselines")
    assert keep == {refs[0], refs[1]}
    assert store.prune(10 * size, keep).removed == []  # within the bound: nothing goes
    dry = store.prune(int(3.4 * size), keep, dry_run=True)
    assert len(list(store.objects())) == 6 and dry.removed == refs[2:5]
    result = store.prune(int(3.4 * size), keep)  # down to 90 % of the bound: 3.06 objects
    assert result.removed == refs[2:5] and result.protected == 2
    assert sorted(r for r, _, _ in store.objects()) == sorted([refs[0], refs[1], refs[5]])
    index_left = {f.read_text().strip() for f in (tmp_path / "store" / "index").rglob("*") if f.is_file()}
    assert index_left == {refs[0], refs[1], refs[5]}  # the index entries of removed objects went with them
    assert store.put(image(102)) == refs[2] and store.has(refs[2])  # put again: back


def test_the_store_command_prunes_to_the_bound_and_keeps_baseline_references(tmp_path, capsys):
    from harness.cli.app import main

    store = ImageStore(tmp_path / "store")
    refs = _aged(store, 4)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "s1.json").write_text(json.dumps({"images": {"output": refs[0]}}))
    args = ["--store", str(store.root), "--baselines", str(tmp_path / "b")]
    assert main(["store", "prune", *args, "--max-mb", "0"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 image(s)" in out and "1 kept as baselines' reference images" in out
    assert [r for r, _, _ in store.objects()] == [refs[0]]
    assert main(["store", "info", *args]) == 0
    assert f"image store {store.root}: 1 image(s)" in capsys.readouterr().out
    assert main(["store", "prune", *args, "--max-mb", "-1"]) == 2
    assert "--max-mb -1: expected a number of megabytes >= 0" in capsys.readouterr().err


def test_missing_reference_objects_are_one_note(tmp_path):
    from harness.suite.baselines import BaselineStore

    store = ImageStore(tmp_path / "store")
    present = store.put(image(11))
    absent = "sha256:" + "d" * 64
    baselines = BaselineStore("mini", tmp_path / "b")
    doc = {"measurement": {"metrics": {}}, "stages": {}, "environment": {}, "pipeline": {}}
    baselines.bake([("v/p/s1", {**doc, "images": {"output": present, "mask": absent}}),
                    ("v/p/s2", doc)])
    assert baselines.images("v/p/s1") == {"mask": absent, "output": present} and baselines.images("v/p/s2") == {}
    assert missing_reference_notes(baselines, ["v/p/s2"], store.root) == []
    [note] = missing_reference_notes(baselines, ["v/p/s1", "v/p/s2", "v/q/s1"], store.root)
    assert note.startswith(f"reference images: 1 of 2 recorded in {baselines.dir} are missing from the image "
                           f"store {store.root} (e.g. v/p/s1 mask sha256:dddddddd…)")
    [note] = missing_reference_notes(baselines, ["v/p/s1"], None)
    assert "2 of 2" in note and "(none recorded)" in note
