"""harness.suite.guides: the guided upscaler's ``stage:source`` guide, built per case.

The guide is the vector's photograph at the output size with the overlays and drawn anchor
content left out; a vector without a finer image is refused at suite load (exit 2, naming it);
a run records the guide (params, artifact, stage numbers) and keys the upscale stage's cache on
the guide's content.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from harness.cli.app import main
from harness.errors import ConfigError
from harness.suite import guides
from harness.run.cache import StageCache
from harness.run.case import execute_case
from harness.stages.guide import Guide
from harness.suite.suites import load_suite
from harness.suite.vectors import load_vector, render
from harness.suite.vectors.rendering import _fit
from harness.project import load_project

VECTORS = Path(__file__).resolve().parents[2] / "vectors"

SUITE = '''
name = "g"
seeds = [1]
vectors = {vectors}

[pipelines.p]
generate = {{ backend = "source" }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea", radius = 3 }}
denoise = {{ backend = "nlmeans", strength = 0.3 }}
upscale = {{ backend = "guided", guide = "{guide}", scale = 2 }}
'''


def vector(vid):
    return load_vector(VECTORS / f"{vid}.toml")


def write_suite(tmp_path, vectors, guide="stage:source"):
    p = tmp_path / "g.toml"
    p.write_text(SUITE.format(vectors=str(list(vectors)).replace("'", '"'), guide=guide))
    return p


def test_the_source_guide_is_the_photograph_at_the_output_size_with_the_overlays_left_out():
    v = vector("watermark_grass")
    r = render(v)
    g = guides.source_guide(v, r, 2)
    assert g.name == "stage:source" and g.image.shape == (512, 512, 3) and g.info == {"source_px": "512x512"}
    assert np.array_equal(g.exclude, np.kron(r.overlay_mask > 0, np.ones((2, 2), bool)))
    # the input is the same photograph fitted down: fitting the guide down gives it back exactly
    assert np.array_equal(_fit(g.image, (256, 256))[keep := r.overlay_mask == 0], r.clean[keep])


def test_drawn_anchor_content_is_left_out_too():
    v = vector("microprint_dilation")  # a microprint strip the vector draws on the photograph
    g = guides.source_guide(v, render(v), 2)
    [an] = [a for a in v.anchors if a.get("render")]
    x0, y0, x1, y1 = an["box"]
    assert g.exclude[2 * y0:2 * y1, 2 * x0:2 * x1].all()


@pytest.mark.parametrize("vid,change,match", [
    ("receipt_microprint", {}, "'receipt_microprint'.*its source is a recipe"),
    ("generated_texture", {}, "its source is a prompt"),
    ("watermark_grass", {"source": {"kind": "skimage", "name": "grass", "fit": "crop"}}, r"fit = \"crop\""),
    ("watermark_grass", {"size": (512, 512)}, "its source is 512x512 after cropping, no larger than the vector's "
                                              "512x512"),
])
def test_a_vector_without_a_finer_image_is_refused(vid, change, match):
    with pytest.raises(ConfigError, match=match):
        guides.check_source(dataclasses.replace(vector(vid), **change))


def test_a_cropped_photograph_reports_its_native_size():
    assert guides.check_source(vector("caption_portrait")) == (260, 260)  # a 260 px crop for a 256 px vector
    assert guides.check_source(vector("lowres_capture")) == (300, 300)  # chelsea's 300 px height, square crop


def test_suite_load_refuses_such_a_vector_and_an_unknown_guide_stage(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the built-in vectors, no project around
    p = write_suite(tmp_path, ["watermark_grass", "receipt_microprint"])
    with pytest.raises(ConfigError, match=r"pipelines\.p\.upscale: vector 'receipt_microprint': upscale guide "
                                          r"'stage:source' needs a full-resolution source photograph"):
        load_suite(p, project=load_project(tmp_path))
    assert main(["run", "--suite", str(p), "--out", str(tmp_path / "r"), "--no-cache"]) == 2
    assert "vector 'receipt_microprint'" in capsys.readouterr().err
    bad = write_suite(tmp_path, ["watermark_grass"], guide="stage:denoise")
    assert main(["run", "--suite", str(bad), "--out", str(tmp_path / "r"), "--no-cache"]) == 2
    assert "names an unknown stage 'denoise'; allowed: stage:source" in capsys.readouterr().err


def test_a_run_records_the_guide_and_a_changed_guide_is_no_cache_hit(tmp_path, monkeypatch):
    suite = load_suite(write_suite(tmp_path, ["watermark_grass"]), project=load_project(tmp_path))
    [case] = suite.cases()
    cache = StageCache(None)
    first = execute_case(case, suite, tmp_path / "run1", cache)
    assert first.error is None, first.error
    assert first.artifacts["upscale_guide"].endswith("upscale_guide.png")
    up = next(s for s in first.config["stages"] if s["stage"] == "upscale")
    assert up["params"]["guide"] == "stage:source"
    assert 0.8 < first.stages["upscale.guided_share"] < 1.0  # the mask and its margins are left out
    assert first.stages["upscale.excluded_share"] == pytest.approx(first.stages["mask.coverage"], abs=0.01)
    again = execute_case(case, suite, tmp_path / "run2", cache)
    assert set(again.config["cache"].values()) == {"hit"}

    real = guides.build_guide

    def one_pixel_off(backend, vector, rendered):
        g = real(backend, vector, rendered)
        image = g.image.copy()
        image[0, 0] ^= 1
        return Guide(g.name, image, g.exclude, g.info)

    monkeypatch.setattr(guides, "build_guide", one_pixel_off)
    changed = execute_case(case, suite, tmp_path / "run3", cache)
    assert changed.config["cache"]["upscale"] == "miss"
    assert {k: v for k, v in changed.config["cache"].items() if k != "upscale"} == \
        {k: "hit" for k in changed.config["cache"] if k != "upscale"}


# --- measured: the pipeline's output against the photograph, per upscale backend -------------------------------

PIPELINE = '''
[pipelines.{name}]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea", radius = 3 }}
denoise = {{ backend = "nlmeans", strength = 0.3 }}
upscale = {{ {upscale}, scale = 2 }}
'''
UPSCALES = {"bicubic": 'backend = "bicubic"', "lanczos": 'backend = "lanczos"', "edge_aware": 'backend = "edge_aware"',
            "guided": 'backend = "guided", guide = "stage:source"'}
PHOTO_VECTORS = ("caption_portrait", "fineprint_survive", "lowres_capture", "microprint_dilation", "photobomb_fill",
                 "watermark_grass")


def pipeline_psnr(folder: Path, vectors=PHOTO_VECTORS, upscales=tuple(UPSCALES)) -> dict[str, dict[str, float]]:
    """PSNR (dB) of each vector's output (telea, nlmeans 0.3, then x2 by each upscale backend) against
    its photograph at the output size, outside the overlays and drawn anchors (where it is the truth)."""
    from PIL import Image

    text = f'name = "psnr"\nseeds = [1]\nvectors = {str(list(vectors)).replace(chr(39), chr(34))}\n'
    text += "".join(PIPELINE.format(name=n, upscale=UPSCALES[n]) for n in upscales)
    (folder / "psnr.toml").write_text(text)
    suite = load_suite(folder / "psnr.toml", project=load_project(folder))
    cache, rows = StageCache(None), {}
    for case in suite.cases():
        out = execute_case(case, suite, folder / "run", cache)
        assert out.error is None, out.error
        img = np.asarray(Image.open(folder / "run" / out.artifacts["output"])).astype(float)
        v = suite.vector(case.vector)
        truth = guides.source_guide(v, render(v), 2)
        mse = float(((img - truth.image) ** 2)[~truth.exclude].mean())
        rows.setdefault(case.vector, {})[case.pipeline.name] = 10 * np.log10(255 ** 2 / mse)
    return rows


def test_in_the_pipeline_the_guide_brings_back_what_denoising_and_downsizing_lost(tmp_path):
    db = pipeline_psnr(tmp_path, ("microprint_dilation", "watermark_grass"), ("lanczos", "guided"))
    for v, row in db.items():
        assert row["guided"] > row["lanczos"] + 3, (v, row)  # measured +4.8 (gravel), +7.1 dB (grass)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        table = pipeline_psnr(Path(tmp))
    print(f"{'vector':22s}" + "".join(f"{n:>12s}" for n in UPSCALES))
    for vid, row in table.items():
        print(f"{vid:22s}" + "".join(f"{row[n]:12.2f}" for n in UPSCALES))
