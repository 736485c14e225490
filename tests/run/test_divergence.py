"""A case's ``diverged``: the first stage whose image differs from its baseline's reference image,
on a real one-case suite baked into tmp (run, bake, run again identical / with a changed parameter)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.imageio import load_image
from harness.report.whatchanged import diverged_text
from harness.run.divergence import ALL_IDENTICAL, NO_REFERENCES, first_divergence, image_difference, stage_order
from harness.run.store import ImageStore
from harness.suite.baselines import BaselineStore

sys.path.insert(0, str(Path(__file__).parents[1] / "cli"))
from cli_suite import classical_suite  # noqa: E402

CID = "caption_portrait/p/s1"


def _run(tmp: Path, out: str, baselines: str = "b") -> dict:
    """``harness run`` of the suite in ``tmp``; its one case as report.json records it, with its run folder."""
    code = main(["run", "--suite", str(tmp / "dv.toml"), "--cache", str(tmp / "c"), "--store", str(tmp / "s"),
                 "--baselines", str(tmp / baselines), "--out", str(tmp / out), "-q"])
    run_dir = next((tmp / out).iterdir())
    case = json.loads((run_dir / "report.json").read_text())["cases"][0]
    return {"code": code, "run_dir": run_dir, **case}


@pytest.fixture(scope="module")
def baked(tmp_path_factory):
    """The suite run once and baked (reference images in the store ``s``), then run again unchanged
    and with the mask dilated 6 px instead of 2."""
    tmp = tmp_path_factory.mktemp("diverge")
    (tmp / "dv.toml").write_text(classical_suite("dv"))
    first = _run(tmp, "r1")
    assert first["code"] == 1 and "diverged" not in first  # no baseline: nothing to compare with
    assert main(["bake", "--suite", str(tmp / "dv.toml"), "--cache", str(tmp / "c"), "--store", str(tmp / "s"),
                 "--baselines", str(tmp / "b"), "--from-report", str(first["run_dir"])]) == 0
    same = _run(tmp, "r2")
    (tmp / "dv.toml").write_text(classical_suite("dv").replace("dilate_px = 2", "dilate_px = 6"))
    changed = _run(tmp, "r3")
    return tmp, BaselineStore("dv", tmp / "b").images(CID), same, changed


def test_an_identical_run_says_every_stage_is_identical(baked):
    tmp, images, same, _ = baked
    assert same["code"] == 0 and same["status"] == "pass"
    assert set(images) == {"input", "detect_mask", "mask_mask", "inpaint", "output"}
    assert same["diverged"] == {"stage": None, "note": ALL_IDENTICAL}
    assert diverged_text(same["diverged"]) == ALL_IDENTICAL


def test_a_changed_parameter_names_the_stage_and_boxes_the_change(baked):
    tmp, images, _, changed = baked
    d = changed["diverged"]
    assert changed["status"] == "fail" and changed["changed"] == [
        {"stage": "mask", "param": "dilate_px", "baseline": 2, "run": 6}]
    # input and the detector's mask are the same images; the mask stage's mask is the first that differs
    assert changed["artifacts"]["detect_mask"] == images["detect_mask"]
    assert d["stage"] == "mask_mask"
    assert (d["reference"], d["candidate"]) == (images["mask_mask"], changed["artifacts"]["mask_mask"])
    store = ImageStore(tmp / "s")
    ref, cand = store.load(d["reference"])[..., 0].astype(int), store.load(d["candidate"])[..., 0].astype(int)
    grown = cand - ref  # dilating further only adds mask pixels
    assert grown.min() == 0 and grown.max() == 255
    ys, xs = np.nonzero(grown)
    assert d["box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    assert d["changed_fraction"] == pytest.approx(len(xs) / ref.size)
    assert d["max_abs"] == 1.0 and d["mean_abs"] == pytest.approx(grown.sum() / 255 / ref.size)
    # every grown pixel lies within 6 px of the 2-px mask: the box is the old mask's box grown by at most 4 px
    oy, ox = np.nonzero(ref)
    assert 0 < ox.min() - d["box"][0] <= 4 and 0 < d["box"][3] - (oy.max() + 1) <= 4
    assert diverged_text(d).startswith(f"first diverging stage: mask's mask (mean |Δ| {100 * d['mean_abs']:.2g} %, "
                                       "max 1, ")


def test_a_baseline_without_reference_images_says_so(baked):
    tmp, _, _, _ = baked
    doc = json.loads(BaselineStore("dv", tmp / "b").path_for(CID).read_text())
    del doc["images"]
    BaselineStore("dv", tmp / "b_noimg").bake([(CID, doc)])
    case = _run(tmp, "r4", baselines="b_noimg")
    assert case["status"] == "fail"  # dilation 6: the comparison still fails; diverged only adds words
    assert case["diverged"] == {"stage": None, "note": NO_REFERENCES}
    assert NO_REFERENCES == "no reference images in the baseline (bake again to record them)"


def test_a_reference_pruned_from_the_store_is_named(baked, tmp_path):
    tmp, images, same, changed = baked
    store = tmp_path / "store"
    shutil.copytree(tmp / "s", store)
    ImageStore(store).path(images["mask_mask"]).unlink()
    d = first_divergence(images, changed["artifacts"], store, changed["run_dir"])
    assert d["stage"] is None and d["reference"] == images["mask_mask"]
    assert d["note"] == (f"the reference image of stage mask_mask ({images['mask_mask']}) is missing from the image "
                         f"store {store} (pruned, or baked on another machine: copy the store or bake again)")
    # an identical stage needs no pixels: the same run against the same pruned store is still all identical
    assert first_divergence(images, same["artifacts"], store, same["run_dir"]) == {"stage": None, "note": ALL_IDENTICAL}


def test_an_older_runs_folder_png_is_hashed_and_a_reencoding_is_not_a_change(baked, tmp_path):
    tmp, images, same, _ = baked
    store = ImageStore(tmp / "s")
    run = tmp_path / "run"
    arts = {}
    for stage, ref in same["artifacts"].items():
        p = run / "artifacts" / f"{stage}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store.path(ref), p)
        arts[stage] = f"artifacts/{stage}.png"
    assert first_divergence(images, arts, tmp / "s", run)["note"] == ALL_IDENTICAL
    from PIL import Image

    Image.open(run / "artifacts" / "inpaint.png").save(run / "artifacts" / "inpaint.png", compress_level=0)
    assert first_divergence(images, arts, tmp / "s", run)["note"] == ALL_IDENTICAL  # other bytes, same pixels
    img = load_image(run / "artifacts" / "inpaint.png").copy()
    img[10:12, 20:23] ^= 0x40
    Image.fromarray(img).save(run / "artifacts" / "inpaint.png")
    d = first_divergence(images, arts, tmp / "s", run)
    assert (d["stage"], d["box"], d["candidate"]) == ("inpaint", [20, 10, 23, 12], None)
    assert d["max_abs"] == pytest.approx(64 / 255) and d["changed_fraction"] == pytest.approx(6 / img[..., 0].size)


def test_a_stage_only_one_side_has_and_different_sizes(baked):
    tmp, images, same, _ = baked
    arts = {k: v for k, v in same["artifacts"].items() if k != "inpaint"}
    d = first_divergence(images, arts, tmp / "s", same["run_dir"])
    assert d == {"stage": "inpaint", "reference": images["inpaint"], "candidate": None,
                 "note": "the run made no image of stage inpaint; the baseline has one"}
    assert diverged_text(d) == "first diverging stage: inpaint: the run made no image of stage inpaint; the baseline has one"
    arts = {**same["artifacts"], "denoise": same["artifacts"]["inpaint"]}
    assert first_divergence(images, arts, tmp / "s")["note"] == \
        "the baseline has no reference image of stage denoise; the run made one"
    small = ImageStore(tmp / "s").put(np.zeros((64, 48, 3), np.uint8))
    d = first_divergence(images, {**same["artifacts"], "inpaint": small}, tmp / "s")
    assert (d["stage"], d["note"]) == ("inpaint", "the image sizes differ: reference 256x256x3, run 64x48x3")


def test_pipeline_order_and_the_difference_measures():
    assert stage_order({"output": 1, "inpaint": 1, "zz": 1}, {"mask_mask": 1, "input": 1, "generate": 1,
                                                               "upscale": 1, "upscale_guide": 1, "detect_mask": 1}) \
        == ["input", "generate", "detect_mask", "mask_mask", "inpaint", "upscale_guide", "upscale", "output", "zz"]
    # a generated vector's base is written before its input (drawn on it): the run's order decides
    assert stage_order({"generate": 1, "input": 1, "output": 1}, {"input": 1}) == ["generate", "input", "output"]
    a = np.zeros((8, 10, 3), np.uint8)
    b = a.copy()
    b[2, 3] = 1  # one LSB: measured, not a change
    b[5, 7, 1] = 255
    got = image_difference(a, b)
    assert got["box"] == [7, 5, 8, 6] and got["changed_fraction"] == pytest.approx(1 / 80)
    assert got["max_abs"] == 1.0 and got["mean_abs"] == pytest.approx((3 + 255) / 255 / 240)
    assert image_difference(a, a + 1)["box"] is None
    assert first_divergence({}, {"input": "x"}, None) == {"stage": None, "note": NO_REFERENCES}
