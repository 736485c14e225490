"""Item 4 of [7 of 9]: one name pattern wherever ids are read (suites, reports, --from-report), and
every baseline path confirmed inside baselines/<suite>/ before anything is written."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from harness.cli import main
from harness.errors import BaselineError, ConfigError
from harness.measuring.driver import measure
from harness.naming import check_case_id, check_name
from harness.suite.baselines import BaselineStore
from harness.suite.suites import load_suite
from harness.report.schema import CaseResult, Report


def files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def doc():
    img = np.random.default_rng(0).integers(0, 200, (48, 48, 3)).astype(np.uint8)
    return {"measurement": measure(img).to_dict(), "stages": {}, "environment": {}, "pipeline": {}}


@pytest.mark.parametrize("value", ["v/p/s1\n", "../p/s1", "v/../s1", "v/p/../../s1", "/v/p/s1", "v/p", "v/p/1",
                                   "v/p/s-1", ".v/p/s1", "v/a+/s1", "v/p/s1/x"])
def test_not_a_case_id(value):
    with pytest.raises(ValueError, match="invalid case id"):
        check_case_id(value)


@pytest.mark.parametrize("value", ["v/p/s1", "v.2/p-x/s10", "v/a+b/s3", "v/p/seeds"])
def test_case_ids(value):
    assert check_case_id(value) == value


@pytest.mark.parametrize("value", ["..", ".", ".x", "-x", "a/b", "a\n", "", "a b", "a+b", 3])
def test_not_a_name(value):
    with pytest.raises(ValueError, match=re.escape(f"invalid pipeline name {value!r}: use letters")):
        check_name("pipeline", value)


@pytest.mark.parametrize("bad", ["../../s1", "v/p/../../../s1", "/tmp/x/p/s1", "v/p/s1/../../../x"])
def test_a_baseline_is_never_written_outside_its_suite_folder(tmp_path, bad):
    root = tmp_path / "baselines"
    with pytest.raises(BaselineError, match=f"invalid case id {bad!r}.*: no baseline path is made from it"):
        BaselineStore("mini", root).bake([("v/p/s1", doc()), (bad, doc())])
    assert files(tmp_path) == []  # nothing written, not even the good case


def test_a_symlink_out_of_the_suite_folder_is_refused_before_writing(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "baselines" / "mini").mkdir(parents=True)
    os.symlink(outside, tmp_path / "baselines" / "mini" / "v")
    with pytest.raises(BaselineError, match=r"v/p/s1\.json: resolves to .*elsewhere/p/s1\.json, outside the suite's "
                                            r"baseline folder"):
        BaselineStore("mini", tmp_path / "baselines").bake([("v/p/s1", doc())])
    assert files(outside) == [] and files(tmp_path / "baselines") == ["mini", "mini/v"]


@pytest.mark.parametrize("suite", ["..", "../x", "a/b", ""])
def test_a_suite_name_is_checked_before_it_becomes_a_folder(tmp_path, suite):
    with pytest.raises(BaselineError, match=f"invalid suite name {suite!r}"):
        BaselineStore(suite, tmp_path)


SUITE = '''
name = "mini"
seeds = [1]
vectors = ["microprint_dilation"]

[pipelines.a]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''


@pytest.mark.parametrize("old,new,key,name", [
    ('name = "mini"', 'name = "../mini"', "name", "invalid suite name '../mini'"),
    ("[pipelines.a]", '[pipelines."../a"]', "pipelines.../a", "invalid pipeline name '../a'"),
    ("[pipelines.a]", '[pipelines."a+b"]', "pipelines.a+b", "invalid pipeline name 'a+b'"),
    ('vectors = ["microprint_dilation"]', 'vectors = ["../x"]', "vectors", "invalid vector name '../x'"),
])
def test_a_suite_names_what_is_not_a_name(tmp_path, old, new, key, name):
    p = tmp_path / "mini.toml"
    p.write_text(SUITE.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_suite(p)
    assert str(info.value).startswith(f"{p}: {key}: {name}: use letters, digits")


def forged_run(tmp_path, case_id: str, record_id: str | None = None):
    """A run folder of suite ``mini`` whose report (or case record) names ``case_id``, written by hand."""
    run = tmp_path / "run"
    (run / "cases").mkdir(parents=True)
    good = CaseResult("microprint_dilation/a/s1", "microprint_dilation", "a", 1, "pass", None, {}, {}, [])
    d = Report("run", "mini", "t", {}, [good], complete=True).to_dict()
    d["cases"][0]["id"] = case_id
    (run / "report.json").write_text(json.dumps(d))
    rec = {"case": good.to_dict(), "measurement": doc()["measurement"]}  # a version-1 record: measurement inline
    rec["case"]["id"] = record_id or case_id
    (run / "cases" / "microprint_dilation__a__s1.json").write_text(json.dumps(rec))
    return run


@pytest.mark.parametrize("report_id,record_id,message", [
    ("../../s1", None, "malformed report: cases[0].id: '../../s1' is not a case id"),
    ("microprint_dilation/a/s1", "../../s1", "malformed case record: case.id: '../../s1' is not a case id"),
    ("microprint_dilation/a/s1", "microprint_dilation/b/s1", "malformed case record: case.id: "
                                                             "'microprint_dilation/b/s1' does not match"),
])
def test_bake_from_a_forged_report_writes_nothing(tmp_path, capsys, report_id, record_id, message):
    suite = tmp_path / "mini.toml"
    suite.write_text(SUITE)
    run = forged_run(tmp_path, report_id, record_id)
    rc = main(["bake", "--suite", str(suite), "--from-report", str(run), "--baselines", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    # nothing anywhere: not under --baselines, not where '../../s1' would have led (tmp_path/s1.json)
    assert files(tmp_path) == ["mini.toml", "run", "run/cases", "run/cases/microprint_dilation__a__s1.json",
                               "run/report.json"]
