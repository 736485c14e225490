"""Runs, bakes and bundles with the image store, end to end (a 2-case classical suite)."""

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from harness.cli.app import main
from harness.run.store import ImageStore, is_ref
from mini_suite import mini_suite_text


def only_new(reports: Path, before: set) -> Path:
    [run] = [p for p in reports.iterdir() if p.is_dir() and p not in before]
    return run


def run(tmp: Path, suite: Path, store: Path, *extra) -> tuple[int, Path]:
    reports = tmp / "reports"
    before = set(reports.iterdir()) if reports.is_dir() else set()
    rc = main(["run", "--suite", str(suite), "--baselines", str(tmp / "b"), "--out", str(reports), "--store",
               str(store), "--cache", str(tmp / "cache"), "-q", *map(str, extra)])
    return rc, only_new(reports, before)


def inodes(store: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (store / "objects").rglob("*.png")}


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store-run")
    suite = tmp / "mini.toml"
    suite.write_text(mini_suite_text())
    rc1, first = run(tmp, suite, tmp / "store")
    objects1 = inodes(tmp / "store")
    assert main(["bake", "--suite", str(suite), "--from-report", str(first), "--baselines", str(tmp / "b"),
                 "--store", str(tmp / "store")]) == 0
    rc2, second = run(tmp, suite, tmp / "store")
    objects2 = inodes(tmp / "store")
    suite.write_text(mini_suite_text(denoise_params=", strength = 0.9"))  # the same cases, other outputs, into an empty store
    rc3, third = run(tmp, suite, tmp / "store2")
    return {"tmp": tmp, "rc": (rc1, rc2, rc3), "runs": (first, second, third), "objects": (objects1, objects2)}


def doc(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def test_a_run_keeps_its_stage_images_in_the_store_not_in_the_run_folder(flow):
    first = flow["runs"][0]
    d = doc(first)
    assert flow["rc"][0] == 1 and d["environment"]["store"] == str(flow["tmp"] / "store")
    # stage images are not in the run folder; the failing cases' figures (charts/) are views of them
    assert [p for p in first.rglob("*.png") if p.parent.name != "charts"] == [] and not (first / "artifacts").exists()
    store = ImageStore(d["environment"]["store"])
    arts = [c["artifacts"] for c in d["cases"]]
    assert all(set(a) >= {"input", "mask_mask", "inpaint", "denoise", "upscale", "output"} for a in arts)
    assert all(is_ref(v) and store.has(v) for a in arts for v in a.values())
    assert len(flow["objects"][0]) == len({v for a in arts for v in a.values()})  # each image once


def test_a_second_run_writes_no_new_object(flow):
    objects1, objects2 = flow["objects"]
    assert flow["rc"][1] == 0 and objects2 == objects1  # the same files, not rewritten (same inodes)
    assert [c["artifacts"] for c in doc(flow["runs"][1])["cases"]] == [c["artifacts"] for c in doc(flow["runs"][0])["cases"]]
    assert not any(n.startswith("reference images") for n in doc(flow["runs"][1])["notes"])


def test_bake_records_each_cases_stage_images_by_reference(flow):
    first = doc(flow["runs"][0])
    for case in first["cases"]:
        v, p, s = case["id"].split("/")
        baseline = json.loads((flow["tmp"] / "b" / "mini" / v / p / f"{s}.json").read_text())
        assert baseline["images"] == case["artifacts"]
        assert len(json.dumps(baseline["images"])) < 1000  # the baseline stays small text


def test_missing_reference_objects_are_a_note_never_an_error(flow):
    third = doc(flow["runs"][2])
    assert flow["rc"][2] == 1 and {c["status"] for c in third["cases"]} == {"fail"}  # other outputs: failed
    [note] = [n for n in third["notes"] if n.startswith("reference images")]
    assert f"are missing from the image store {flow['tmp'] / 'store2'}" in note and "output" in note


def test_a_bundle_holds_the_views_and_their_images_with_links_inside_it(flow, tmp_path, capsys):
    third = flow["runs"][2]
    dest = tmp_path / "bundle"
    assert main(["export", str(third), str(dest)]) == 0
    assert re.search(r"bundle .*: \d+\.\d MB, \d+ full-size image\(s\), 0 thumbnail\(s\)", capsys.readouterr().err)
    assert {p.name for p in dest.iterdir()} >= {"report.json", "summary.md", "index.html", "checks.parquet", "images"}
    bundled = doc(dest)
    arts = {v for c in bundled["cases"] for v in c["artifacts"].values()}
    assert arts and all(v.startswith("images/") and v.endswith(".png") and (dest / v).is_file() for v in arts)
    srcs = re.findall(r'src="([^"]+)"', (dest / "index.html").read_text())
    assert any(s.startswith("images/") for s in srcs)
    assert all((dest / unquote(s)).is_file() for s in srcs)  # every image the page shows is in the bundle
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert size < 15 * 2**20


def test_a_passing_cases_images_are_thumbnails_and_a_bundle_replaces_only_a_bundle(flow, tmp_path, capsys):
    from PIL import Image

    second, dest = flow["runs"][1], tmp_path / "bundle"
    assert main(["export", str(second), str(dest)]) == 0
    assert main(["export", str(second), str(dest)]) == 0  # an earlier bundle is replaced
    arts = {v for c in doc(dest)["cases"] for v in c["artifacts"].values()}
    assert all(v.endswith(".t160.webp") for v in arts)
    with Image.open(dest / sorted(arts)[0]) as im:
        assert max(im.size) == 160
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["export", str(second), str(tmp_path / "mine")]) == 2
    assert "the folder is not empty and is not an earlier bundle" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_a_bundle_of_an_old_run_and_a_pruned_store_keeps_what_it_cannot_find_as_text(tmp_path):
    import numpy as np

    from harness.imageio import save_png
    from harness.report.bundle import write_bundle
    from harness.report.schema import CaseResult, Report

    store = ImageStore(tmp_path / "store")
    img = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    ref, gone = store.put(img), "sha256:" + "e" * 64
    run_dir = tmp_path / "run"
    save_png(run_dir / "artifacts" / "v__p__s1" / "input.png", img)  # an older run's PNG: the same image
    arts = {"input": "artifacts/v__p__s1/input.png", "output": ref, "mask_mask": gone}
    report = Report("r", "mini", "2026-01-01T00:00:00+00:00", {"store": str(store.root)},
                    [CaseResult("v/p/s1", "v", "p", 1, "fail", None, {}, arts)], complete=True, planned=["v/p/s1"])
    report.write(run_dir)
    b = write_bundle(run_dir, tmp_path / "bundle")
    assert (b.full, b.thumbs, b.missing) == (1, 0, [f"v/p/s1 mask_mask {gone}"])  # one image, shared
    [case] = doc(tmp_path / "bundle")["cases"]
    assert case["artifacts"]["input"] == case["artifacts"]["output"] == f"images/{ref[7:31]}.png"
    assert case["artifacts"]["mask_mask"] == gone
    assert (tmp_path / "bundle" / case["artifacts"]["output"]).read_bytes() == store.path(ref).read_bytes()


def test_full_size_images_stop_at_the_budget_and_the_bundle_says_so(tmp_path):
    import numpy as np

    from harness.report.bundle import write_bundle
    from harness.report.schema import CaseResult, Report

    store = ImageStore(tmp_path / "store")
    refs = [store.put(np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8)) for i in range(2)]
    size = store.path(refs[0]).stat().st_size
    cases = [CaseResult(f"v/p/s{i}", "v", "p", i, "fail", None, {}, {"output": r}) for i, r in enumerate(refs)]
    Report("r", "mini", "2026-01-01T00:00:00+00:00", {"store": str(store.root)}, cases, complete=True,
           planned=[c.id for c in cases]).write(tmp_path / "run")
    b = write_bundle(tmp_path / "run", tmp_path / "bundle", full_budget=int(1.5 * size))
    assert (b.full, b.thumbs, b.over_budget) == (1, 1, ["v/p/s1"])
    bundled = doc(tmp_path / "bundle")
    assert [c["artifacts"]["output"].rsplit(".", 1)[1] for c in bundled["cases"]] == ["png", "webp"]
    assert any(n.startswith("bundle: 1 failing case(s) shown by thumbnails only") for n in bundled["notes"])


def test_run_refuses_a_bundle_folder_in_the_way_before_running(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    assert main(["run", "--bundle", str(tmp_path / "mine"), "--out", str(tmp_path / "r")]) == 2
    assert "the folder is not empty and is not an earlier bundle" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
