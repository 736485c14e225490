"""[[cross]] entries as pytest items: one per vector/a+b/sSEED after the suite's cases, failing with
the cross checks named, correct on any xdist worker and when selected alone (pytester projects)."""

import json
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROJECT = ('vectors = "vectors"\nsuites = "vectors/suites"\nbaselines = "baselines"\nreports = "reports"\n'
           'cache = ".harness-cache"\nsuite = "xm"\n')
SUITE = '''name = "xm"
seeds = [1]
vectors = ["generated_texture"]

[pipelines.m0]
generate = { backend = "tiny_diffusion", model_seed = 0 }

[pipelines.m0b]
generate = { backend = "tiny_diffusion", model_seed = 0 }

[pipelines.m1]
generate = { backend = "tiny_diffusion", model_seed = 1 }

[[cross]]
a = "m0"
b = "m0b"

[[cross]]
a = "m0"
b = "m1"
'''
FILE = "vectors/suites/xm.toml"
SIDES = ["generated_texture/m0/s1", "generated_texture/m0b/s1", "generated_texture/m1/s1"]
SAME, SWAP = "generated_texture/m0+m0b/s1", "generated_texture/m0+m1/s1"


def write_project(root: Path) -> Path:
    (root / "vectors" / "suites").mkdir(parents=True, exist_ok=True)
    (root / "harness.toml").write_text(PROJECT)
    (root / FILE).write_text(SUITE)
    return root


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    """The sides' baselines, baked once, then one judged run: in this process, so that torch,
    scipy.fft and the views' pandas are imported before pytester snapshots ``sys.modules``
    (an in-process run cannot import an extension module a second time)."""
    from harness.cli import main

    root = write_project(tmp_path_factory.mktemp("xm"))
    assert main(["bake", "--project", str(root)]) == 0
    assert main(["run", "--project", str(root), "--out", str(root / "first")]) == 1  # m0+m1 fails
    return root


@pytest.fixture
def project(pytester, baked) -> Path:
    root = write_project(pytester.path)
    shutil.copytree(baked / "baselines", root / "baselines")
    shutil.copytree(baked / ".harness-cache", root / ".harness-cache")
    return root


def only_run(project: Path) -> Path:
    [run] = (project / "reports").iterdir()
    return run


def test_cross_items_follow_the_cases_and_fail_with_their_checks_named(pytester, project):
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([f"{FILE}::{cid}" for cid in SIDES + [SAME, SWAP]] + ["5 tests collected*"])
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([f"harness case {SWAP}: fail",
                                 "  b=m1 against a=m0 at generate: hue offset +*° (max 10°), high-frequency energy *",
                                 "  fail cross_hue [[]generate a=m0 b=m1[]]: * vs baseline * (delta *, tolerance 10)"])
    report = json.loads((only_run(project) / "report.json").read_text())
    assert report["complete"] is True and [c["id"] for c in report["cases"]] == SIDES + [SAME, SWAP]
    assert report["summary"] == {"passed": 4, "failed": 1, "errors": 0, "skipped": 0}
    swap = report["cases"][-1]
    assert (swap["pipeline"], swap["seed"], swap["status"]) == ("m0+m1", 1, "fail")
    # the sides ran in this process: the entry points at their images (image store references)
    sides = {c["id"]: c for c in report["cases"]}
    assert swap["artifacts"] == {"a": sides["generated_texture/m0/s1"]["artifacts"]["generate"],
                                 "b": sides["generated_texture/m1/s1"]["artifacts"]["generate"]}
    assert swap["artifacts"]["a"].startswith("sha256:") and swap["artifacts"]["a"] != swap["artifacts"]["b"]
    assert "## Cross-model" in (only_run(project) / "summary.md").read_text()


def test_a_cross_item_selected_alone_runs_its_sides_itself(pytester, project):
    result = pytester.runpytest("-p", "no:cacheprovider", f"{FILE}::{SWAP}")
    result.assert_outcomes(failed=1)
    run = only_run(project)
    report = json.loads((run / "report.json").read_text())
    assert [c["id"] for c in report["cases"]] == report["planned"] == [SWAP] and report["complete"] is True
    swap = report["cases"][0]
    assert [c["metric"] for c in swap["checks"] if c["status"] == "fail"] == ["cross_hue"]
    # nothing of the sides' items was written; the compared images are kept with the entry
    assert sorted(p.name for p in (run / "cases").iterdir()) == ["generated_texture__m0+m1__s1.json"]
    from harness.run.store import resolve_artifact

    # the compared images are in the image store, by reference
    assert sorted(swap["artifacts"]) == ["a", "b"]
    assert all(resolve_artifact(v, run, report["environment"]["store"]).is_file() for v in swap["artifacts"].values())


def test_two_xdist_workers_give_the_same_verdicts(pytester, project):
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    report = json.loads((only_run(project) / "report.json").read_text())
    assert [(c["id"], c["status"]) for c in report["cases"]] == [(cid, "pass") for cid in SIDES + [SAME]] + \
        [(SWAP, "fail")]
    hue = {c["metric"]: c for c in report["cases"][-1]["checks"]}["cross_hue"]
    assert abs(hue["delta"]) > 10 and report["complete"] is True
