"""index.html: links only to relative paths inside the run folder; nothing from a report reaches the
page (text or attribute) unescaped."""

from __future__ import annotations

import json
import os
import re

import pytest

from harness.comparing.engine import Check
from harness.report.html import artifact_href, index_html
from harness.report.render import render_report
from harness.report.schema import CaseResult, Report

PAYLOAD = '"><script>alert(1)</script><x y=\''


@pytest.mark.parametrize("path", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<b>x</b>",
                                  "/etc/passwd", "../../x", "artifacts/../../x", "//evil.example/x.png",
                                  "\\\\evil\\x.png", " javascript:alert(1)", "a\nb.png", "", "C:x.png"])
def test_an_artifact_outside_the_run_folder_is_not_a_link(tmp_path, path):
    assert artifact_href(path, tmp_path) is None


def test_a_symlink_out_of_the_run_folder_is_not_a_link(tmp_path):
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir(), outside.mkdir()
    os.symlink(outside, run / "artifacts")
    assert artifact_href("artifacts/x.png", run) is None
    (run / "own").mkdir()
    assert artifact_href("own/x y#1.png", run) == "own/x%20y%231.png"  # percent-encoded, inside


def case_with(artifacts: dict[str, str], status="fail") -> CaseResult:
    return CaseResult("v/p/s1", "v", "p", 1, status, None, {}, artifacts,
                      [Check("band_power", "band=high", 2.0, 1.0, 1.0, 0.5, status)])


def test_hostile_artifacts_render_as_text(tmp_path):
    arts = {"input": "javascript:alert(1)", "output": "/etc/passwd", "inpaint": "../../x",
            "mask_mask": "artifacts/v__p__s1/mask.png"}
    page = index_html(Report("r", "smoke", "t", {}, [case_with(arts)], complete=True), tmp_path)
    hrefs = re.findall(r'(?:href|src)="([^"]*)"', page)
    # the mask's thumbnail and its link, then each figure and its link (files the page wrote); nothing else
    assert hrefs[:2] == ["artifacts/v__p__s1/mask.png", "artifacts/v__p__s1/mask.png"]
    assert len(hrefs) > 2 and all(h.startswith("charts/v__p__s1") and (tmp_path / h).is_file() for h in hrefs[2:])
    for bad in ("javascript:alert(1)", "/etc/passwd", "../../x"):
        assert f"{bad} (not a path inside the run folder)</code>" in page


def _every_string(doc, value):
    """Every string of a (schema-valid) report.json that the schema lets be free text, set to ``value``."""
    doc["run_id"] = doc["created"] = value
    doc["notes"] = [value]
    doc["environment"] = {"git_sha": value, value: value}
    c = doc["cases"][0]
    c["error"] = value
    c["artifacts"] = {"input": value, "output": value, value: value}
    c["timings"] = {value: 1.0}
    c["config"] = {value: value}
    for ch in c["checks"]:
        ch["metric"] = ch["slice"] = value
        ch["note"] = value
    return doc


def test_no_report_string_reaches_the_page_unescaped(tmp_path):
    cross = CaseResult("v/a+b/s1", "v", "a+b", 1, "fail", PAYLOAD, {}, {"a": PAYLOAD, "b": "x.png"},
                       [Check("cross_hue", "offset", 30.0, 0.0, 30.0, 10.0, "fail")])
    report = Report("r", "smoke", "t", {}, [case_with({}), cross], complete=False, planned=["v/p/s1", "v/a+b/s1",
                                                                                            "v/p/s2"])
    doc = report.to_dict()
    _every_string(doc, PAYLOAD)
    doc["cases"][1]["artifacts"] = {"a": PAYLOAD, "b": PAYLOAD}
    doc["cases"][1]["checks"][0]["slice"] = PAYLOAD
    (tmp_path / "report.json").write_text(json.dumps(doc))
    render_report(tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert page.count("&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;x y=&#39;") >= 6  # markupsafe's escapes
    # one script: the page's own, last in the body
    assert page.count("<script>") == 1 and page.index("<script>") > page.rindex("&lt;script&gt;")
    assert "<x y=" not in page and "y='" not in page
    # every attribute value is one of ours: escaped text never closes a quote
    for attr in re.findall(r'\s([a-z]+)=("[^"]*"|\'[^\']*\')', page):
        assert "<" not in attr[1] and ">" not in attr[1], attr
