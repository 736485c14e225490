"""A failing harness item's CI properties (stage, slice, box, artifacts, what changed, diverged) as
``<property>`` elements of ``pytest --junitxml``, for suite items and for --harness-report items."""

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.naming import case_slug
from harness.report.text import format_check, worst_checks
from harness.report.whatchanged import diverged_text
from harness.run.store import ImageStore

pytest_plugins = ["pytester"]

PROJECT = ('vectors = "vectors"\nsuites = "vectors/suites"\nbaselines = "baselines"\nreports = "reports"\n'
           'cache = ".harness-cache"\nsuite = "tiny"\n')
SUITE = '''name = "tiny"
seeds = [1]
vectors = ["microprint_dilation"]

[pipelines.classic]
generate = {{ backend = "source" }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = {dilate} }}
inpaint = {{ backend = "telea" }}
'''
CID = "microprint_dilation/classic/s1"


def write_project(root: Path, dilate: int) -> Path:
    (root / "vectors" / "suites").mkdir(parents=True, exist_ok=True)
    (root / "harness.toml").write_text(PROJECT)
    (root / "vectors" / "suites" / "tiny.toml").write_text(SUITE.format(dilate=dilate))
    return root


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    """The project baked with a 2-px mask dilation: baselines and their reference images (the store)."""
    from harness.cli import main

    root = write_project(tmp_path_factory.mktemp("baked"), dilate=2)
    assert main(["bake", "--project", str(root)]) == 0
    return root


def properties(xml: Path) -> dict[str, dict[str, str]]:
    """``{testcase name: {property name: value}}`` of a JUnit XML file."""
    tree = ET.parse(xml)
    return {tc.get("name"): {p.get("name"): p.get("value") for p in tc.iter("property")}
            for tc in tree.iter("testcase")}


def test_a_failing_item_and_its_report_item_carry_the_ci_properties(pytester, baked):
    root = write_project(pytester.path, dilate=8)  # the wider mask erases microprinting the baseline keeps
    for folder in ("baselines", ".harness-store"):
        shutil.copytree(baked / folder, root / folder)
    result = pytester.runpytest(f"--junitxml={root / 'junit.xml'}")
    result.assert_outcomes(failed=1)
    [run] = (root / "reports").iterdir()
    case = json.loads((run / "report.json").read_text())["cases"][0]
    from harness.comparing.engine import Check

    # a case's deciding checks hold every failing one: their worst is the case's
    assert len(case["checks"]) >= case["n_failed"] > 100
    worst = worst_checks([Check.from_dict(c) for c in case["checks"]], 1)[0]
    props = properties(root / "junit.xml")[CID]
    assert props["harness_stage"] == case["diverged"]["stage"] == "mask_mask"
    assert props["harness_diverged"] == diverged_text(case["diverged"])
    assert props["harness_diverged"].startswith("first diverging stage: mask's mask (mean |Δ| ")
    assert props["harness_changed"] == "mask.dilate_px 2 → 8"
    assert props["harness_check"] == format_check(worst) and props["harness_slice"] == worst.slice
    assert ("harness_box" in props) == (worst.box is not None)
    if worst.box is not None:
        assert props["harness_box"] == str(list(worst.box))
    store = ImageStore(root / ".harness-store")
    assert {k: v for k, v in props.items() if k.startswith("harness_artifact_")} == {
        f"harness_artifact_{stage}": str(store.path(ref)) for stage, ref in case["artifacts"].items()}
    assert Path(props["harness_artifact_output"]).is_file()

    # the same run's report.json as items: the same properties, read from the record
    result = pytester.runpytest("--harness-report", str(run), f"--junitxml={root / 'report.xml'}")
    result.assert_outcomes(failed=1)
    again = properties(root / "report.xml")[CID]
    assert {k: v for k, v in again.items() if k != "harness_case"} == \
        {k: v for k, v in props.items() if k != "harness_case"}
    assert (run / "cases" / f"{case_slug(CID)}.json").is_file()


def test_a_passing_item_has_no_ci_properties(pytester, baked):
    root = write_project(pytester.path, dilate=2)
    for folder in ("baselines", ".harness-store"):
        shutil.copytree(baked / folder, root / folder)
    result = pytester.runpytest(f"--junitxml={root / 'junit.xml'}")
    result.assert_outcomes(passed=1)
    assert [k for k in properties(root / "junit.xml")[CID] if k != "harness_case"] == []
    [run] = (root / "reports").iterdir()
    case = json.loads((run / "report.json").read_text())["cases"][0]
    assert case["diverged"] == {"stage": None, "note": "every stage identical to its reference image"}
