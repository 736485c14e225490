"""The built-in nightly's OCR pipelines serve fineprint_survive: the text detector finds the fine
print as text (4 of its 5 regions), and the mask stage's drop_anchor_regions keeps those lines out
of the fill region, so the case meets its own absolute expectations right after baking."""

from __future__ import annotations

import pytest

from harness.run.cache import StageCache
from harness.run.case import execute_case
from harness.suite.suites import load_suite
from harness.project import load_project


@pytest.mark.parametrize("pipeline", ["ns_bilateral_bicubic", "patchmatch_nlmeans_realesrgan"])
def test_ocr_pipelines_keep_the_fine_print_and_remove_the_logo(pipeline, tmp_path):
    suite = load_suite("nightly", project=load_project(tmp_path))  # the built-in suite, no project here
    [case] = suite.cases(seeds=[1], k_expr=f"fineprint_survive/{pipeline}/")
    out = execute_case(case, suite, tmp_path / "run", StageCache(None))
    assert out.error is None, out.error
    assert out.stages["detect.regions"] == 5.0  # the logo and the fine print's 4 lines
    assert out.stages["mask.anchor_dropped_px"] == 4999.0  # those 4 lines, kept
    expect = {c.slice.split()[0]: c for c in out.expectations if c.metric == "expect"}
    assert expect["min_detect_recall"].status == "pass" and expect["min_detect_recall"].value > 0.99
    assert expect["anchors_survive"].status == "pass" and expect["anchors_survive"].value > 0.9  # was 0.005 / 0.010
    assert [c.slice for c in out.expectations if c.status == "fail"] == []
