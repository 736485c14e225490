"""The harness_check fixture: pytest-regressions' baseline lifecycle and syrupy's rule for
unused baselines (tested with pytester)."""

import json

import pytest

pytest_plugins = ["pytester"]

PHOTO = '''
from pathlib import Path

import numpy as np
from skimage import data

IMAGE = data.astronaut()[::4, ::4].copy()  # 128 x 128


def image():
    if Path("mode.txt").read_text().strip() == "noise":  # sigma 8: a washed-out, grainy output
        rng = np.random.default_rng(0)
        return np.clip(IMAGE + rng.normal(0, 8, IMAGE.shape), 0, 255).astype(np.uint8)
    return IMAGE


def test_photo(harness_check):
    harness_check(image())
'''


@pytest.fixture(scope="module", autouse=True)
def measuring_imported():
    """Measure once here, so the measuring code is imported before pytester snapshots
    ``sys.modules`` (numpy refuses to be imported twice in one process)."""
    from skimage import data

    import harness

    harness.compare_paired(harness.measure(data.astronaut()[::4, ::4]), harness.measure(data.astronaut()[::4, ::4]))


def test_baseline_lifecycle(pytester):
    pytester.makepyfile(test_img=PHOTO)
    mode = pytester.path / "mode.txt"
    mode.write_text("orig")
    baseline = pytester.path / "test_img" / "test_photo.json"
    obtained = baseline.with_name("test_photo.obtained.json")

    result = pytester.runpytest()  # no baseline: written, and the test fails
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*harness_check: baseline written to test_img/test_photo.json; rerun to compare*"])
    doc = json.loads(baseline.read_text())
    assert doc["schema_version"] == 1
    assert doc["params"] == {"tile": None, "ring": 8, "shape": [128, 128]}
    assert "band_power" in doc["measurement"]["metrics"]
    assert baseline.read_text().count("\n") > 100  # a value a line: a changed value is a one-line diff

    pytester.runpytest().assert_outcomes(passed=1)

    mode.write_text("noise")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "harness_check test_photo: fail against test_img/test_photo.json",
        "  fail * ?*?: * vs baseline * (delta *, tolerance *)",
        "  ... * more failing checks",
        "  obtained values written to test_img/test_photo.obtained.json; if the change is intended, accept it "
        "with --harness-regen",
    ])
    assert "harness_check(image())" not in result.stdout.str()  # the checks, not a traceback
    assert json.loads(baseline.read_text()) == doc
    assert json.loads(obtained.read_text())["params"] == doc["params"]

    mode.write_text("orig")  # matching again: passes and the stale .obtained.json goes
    pytester.runpytest().assert_outcomes(passed=1)
    assert not obtained.exists()

    mode.write_text("noise")
    result = pytester.runpytest("--harness-regen")
    result.assert_outcomes(failed=1)  # a regeneration never passes
    result.stdout.fnmatch_lines(["*harness_check: regenerated test_img/test_photo.json (--harness-regen); "
                                 "rerun without it to compare*"])
    assert json.loads(baseline.read_text())["measurement"] != doc["measurement"]
    pytester.runpytest().assert_outcomes(passed=1)


def test_a_corrupt_baseline_fails_naming_the_file(pytester):
    pytester.makepyfile(test_img=PHOTO)
    (pytester.path / "mode.txt").write_text("orig")
    baseline = pytester.mkdir("test_img") / "test_photo.json"
    baseline.write_text("{not json")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*harness_check: test_img/test_photo.json: corrupt baseline (not readable JSON:*"])
    baseline.write_text(json.dumps({"schema_version": 7}))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*harness_check: test_img/test_photo.json: corrupt baseline (schema_version 7, "
                                 "expected 1)*"])
    assert "Traceback" not in result.stdout.str()


NAMES = '''
import numpy as np
import pytest
from skimage import data

IMAGE = data.astronaut()[::4, ::4].copy()
MASK = np.zeros(IMAGE.shape[:2], bool)
MASK[40:80, 40:90] = True


@pytest.mark.parametrize("size", ["small/1", "big 2"])
def test_sizes(harness_check, size):
    harness_check(IMAGE, name="plain")


class TestGroup:
    def test_member(self, harness_check):
        harness_check(IMAGE, mask=MASK, anchors=MASK, tile=32, ring=4)


def test_twice(harness_check):
    harness_check(IMAGE, name="a")
    harness_check(IMAGE, name="a")


def test_bad_tolerances(harness_check):
    harness_check(IMAGE, tolerances="missing.toml")
'''


def test_baseline_names_and_measuring_options(pytester):
    pytester.makepyfile(test_img=NAMES)
    result = pytester.runpytest()
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(["*harness_check: tolerances: *missing.toml*"])
    folder = pytester.path / "test_img"
    assert sorted(p.name for p in folder.iterdir()) == [
        "TestGroup.test_member.json", "test_sizes[big_2]-plain.json", "test_sizes[small_1]-plain.json",
        "test_twice-a.json"]
    assert json.loads((folder / "TestGroup.test_member.json").read_text())["params"] == {
        "tile": 32, "ring": 4, "shape": [128, 128]}
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*harness_check: test_img/test_twice-a.json was already checked in this test; "
                                 "give each check its own name=*"])


TWO = '''
from skimage import data

IMAGE = data.astronaut()[::4, ::4].copy()


def test_a(harness_check):
    harness_check(IMAGE)


def test_b(harness_check):
    harness_check(IMAGE[::-1].copy())
'''


def test_unused_baselines_are_reported_for_modules_that_ran_whole(pytester):
    pytester.makepyfile(test_img=TWO)
    pytester.runpytest().assert_outcomes(failed=2)  # writes test_a.json and test_b.json
    folder = pytester.path / "test_img"
    (folder / "test_gone.json").write_text("{}")
    (folder / "test_a.obtained.json").write_text("{}")  # inspection output, never a baseline

    result = pytester.runpytest("--harness-unused")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["1 unused harness_check baseline(s): no check used them in this session",
                                 "  unused test_img/test_gone.json"])
    assert "obtained" not in result.stdout.str()

    result = pytester.runpytest("--harness-unused=fail")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  unused test_img/test_gone.json"])

    # -k runs test_a alone: the module did not run whole, so nothing in it is called unused
    result = pytester.runpytest("--harness-unused=fail", "-k", "test_a")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == 0
    assert "harness_check baseline" not in result.stdout.str()

    # under xdist the workers report what they used, the controller decides
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider", "--harness-unused=fail")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["  unused test_img/test_gone.json"])
    assert "test_b.json" not in result.stdout.str()
