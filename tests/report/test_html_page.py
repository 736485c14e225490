"""index.html's content without a browser: groups by vector × pipeline with seeds folded, failures
first, what a failing case shows, figures rendered generically, the environment, the templates
shipped as package data."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib.resources import files
from pathlib import Path
from urllib.parse import unquote

from html_runs import STAGES, synthetic_run

from harness.comparing.engine import Check
from harness.report import html_cases
from harness.report.figures import Figure
from harness.report.html import environment_rows, index_html
from harness.report.html_cases import case_groups
from harness.report.schema import CaseResult, Report, load_report

ROOT = Path(__file__).resolve().parents[2]


def test_cases_are_grouped_by_vector_and_pipeline_worst_first_with_seeds_folded(tmp_path):
    synthetic_run(tmp_path / "run", vectors=3, pipelines=2, seeds=3, failing=("v1/p0",), erroring=("v2/p1",))
    report = load_report(tmp_path / "run")
    groups = case_groups(report, tmp_path / "run")
    assert [(g.key, g.status, g.counts) for g in groups[:3]] == [
        ("v2/p1", "error", [("error", 3)]), ("v1/p0", "fail", [("fail", 3)]), ("v0/p0", "pass", [("pass", 3)])]
    fail = groups[1]
    assert [r.seed for r in fail.rows] == ["s1", "s2", "s3"] and fail.changed == ["mask.dilate_px 2 → 6"]
    assert fail.sev == 7.0 and fail.open and not groups[2].open  # seed 3: 4 + 3 × tolerance
    # only the worst seed's details are open; each failing case lists its worst checks with boxes
    assert [r.detail.open for r in fail.rows] == [False, False, True]
    worst = fail.rows[2].detail
    assert [(c.metric, c.slice, c.where, c.value, c.baseline, c.sev) for c in worst.checks] == [
        ("band_power", "band=mid tile=r2c3 ch=Y", "x 192-256, y 128-192", "17", "10", "7×"),
        ("band_power", "band=mid tile=r2c4 ch=Y", "x 256-320, y 128-192", "17", "10", "7×")]
    assert [s.label for s in worst.strip] == list(STAGES) and all(s.href for s in worst.strip)
    # its figures (whichever harness.report.figures draws), each a file inside the run folder
    assert worst.figures and all((tmp_path / "run" / unquote(f.href)).is_file() for f in worst.figures)
    assert fail.rows[2].worst == "band_power [band=mid tile=r2c3 ch=Y] @ x 192-256, y 128-192: 17 vs 10 (7× tolerance)"
    # a passing case: one line, its images as links by stage name, no details
    ok = groups[2].rows[0]
    assert ok.detail is None and [link.label for link in ok.links] == list(STAGES)
    assert ok.worst == "closest: 0.4× tolerance" and ok.counts == "0 of 74 failed"


def test_the_page_leads_with_the_verdict_and_what_changed_then_failing_groups_open(tmp_path):
    synthetic_run(tmp_path / "run", vectors=2, pipelines=2, seeds=2, failing=("v1/p1",))
    page = index_html(load_report(tmp_path / "run"), tmp_path / "run")
    assert page.index("<b>FAIL</b>: 6 passed, 2 failed, 0 errors") < page.index("What changed since the baselines")
    assert "<li><b>mask.dilate_px 2 → 6</b> in 2 cases (fail)</li>" in page
    assert "Environment: device cpu · threads 1 · executor local · git sha 0123abc</summary>" in page
    opened = re.findall(r'<details class="g" data-r="\d" data-s="[^"]*" data-t="[^"]*" data-k="([^"]+)"( open)?>', page)
    assert opened == [("v1/p1", " open"), ("v0/p0", ""), ("v0/p1", ""), ("v1/p0", "")]
    # a stage strip: the stage named under each lazy-loaded thumbnail, linking to the full image
    strip = re.search(r'<div class="strip">(.*?)</div>', page).group(1)
    assert re.findall(r"<figcaption>([^<]+)</figcaption>", strip) == list(STAGES)
    assert re.findall(r'<a href="([^"]+)"><img loading="lazy" src="\1"', strip)[0].startswith("../store/objects/")
    assert page.count('<option value="') == 3 and 'id="q"' in page  # sort choices and the search box


def test_figures_render_generically_and_only_inside_the_run_folder(tmp_path, monkeypatch):
    figs = [Figure("triptych", "reference | candidate | <difference>", "charts/a b.png"),
            Figure("zoom", "zoom", "../outside.png")]
    monkeypatch.setattr(html_cases, "case_figures", lambda report, case, run_dir, tiles: figs)
    (tmp_path / "charts").mkdir()
    case = CaseResult("v/p/s1", "v", "p", 1, "fail", None, {}, {}, [Check("m", "all", 2.0, 1.0, 1.0, 0.5, "fail")])
    page = index_html(Report("r", "s", "t", {}, [case], complete=True), tmp_path)
    assert ('<figure><a href="charts/a%20b.png"><img loading="lazy" src="charts/a%20b.png" '
            'alt="reference | candidate | &lt;difference&gt;"></a><figcaption>reference | candidate | '
            '&lt;difference&gt;</figcaption></figure>') in page
    assert "<code class=\"bad-link\">zoom: ../outside.png (not a path inside the run folder)</code>" in page
    assert "outside.png\"" not in page


def test_a_store_reference_without_its_object_is_text(tmp_path):
    ref = "sha256:" + "ab" * 32
    case = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {"output": ref}, [])
    page = index_html(Report("r", "s", "t", {"store": str(tmp_path / "store")}, [case], complete=True), tmp_path)
    assert f"output: {ref} (not in the image store (pruned, or another machine&#39;s store))</code>" in page


def test_environment_rows_lead_with_device_threads_and_versions():
    env = {"store": "/s", "versions": {"numpy": "2.0", "torch": "2.13"}, "device": "cuda:0", "threads": 4,
           "git_sha": None, "seeds": [1, 2]}
    rows = environment_rows(env)
    assert rows["main"] == [("device", "cuda:0"), ("threads", "4"), ("git_sha", "n/a"),
                            ("versions", "numpy 2.0, torch 2.13"), ("seeds", "1, 2")]
    assert rows["more"] == [("store", "/s")] and rows["line"] == "device cuda:0 · threads 4 · git sha n/a"
    assert environment_rows({})["line"] == "not recorded"


def test_the_templates_ship_as_package_data():
    names = {p.name for p in files("harness.report").joinpath("templates").iterdir() if p.is_file()}
    assert names >= {"cases.html.j2", "index.html.j2", "macros.html.j2", "page.css", "page.js"}
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["harness.report"]
    assert [n for n in sorted(names) if not any(fnmatch.fnmatch(f"templates/{n}", g) for g in globs)] == []


def test_figures_are_drawn_for_the_worst_failing_cases_only(tmp_path, monkeypatch):
    drawn: list[str] = []

    def fake(report, case, run_dir, tiles):
        drawn.append(case.id)
        return [Figure("checks", "worst checks", "charts/x.png")]

    monkeypatch.setattr(html_cases, "case_figures", fake)
    monkeypatch.setattr(html_cases, "FIGURE_CASES", 3)
    cases = [CaseResult(f"v/p/s{i}", "v", "p", i, "fail", None, {}, {},
                        [Check("m", "all", 2.0, 1.0, float(i), 0.5, "fail")]) for i in range(1, 6)]
    page = index_html(Report("r", "s", "t", {}, cases, complete=True), tmp_path)
    assert sorted(drawn) == ["v/p/s3", "v/p/s4", "v/p/s5"]  # the largest |delta| / tolerance
    assert page.count("figures are drawn for the 3 worst failing cases only") == 2
