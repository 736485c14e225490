"""A project vector with a built-in's id shadows it, with a note: in the suite, the run's
report and `harness vectors list`."""

from __future__ import annotations

import json
import shutil

from vector_helpers import BASE, write

from harness.cli import main
from harness.suite.suites import load_suite
from harness.project import builtin_dir, load_project

SUITE = '''
name = "mine"
seeds = [1]
vectors = ["fineprint_survive"]

[pipelines.p]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''


def _project(tmp_path, vector_text: str, vid: str = "fineprint_survive"):
    (tmp_path / "harness.toml").write_text('vectors = "vectors"\n', encoding="utf-8")
    (tmp_path / "vectors" / "suites").mkdir(parents=True)
    write(tmp_path / "vectors", vector_text.replace('id = "bad"', f'id = "{vid}"'), vid)
    (tmp_path / "vectors" / "suites" / "mine.toml").write_text(SUITE, encoding="utf-8")
    return load_project(tmp_path)


def test_a_project_vector_shadows_the_builtin_and_the_suite_says_so(tmp_path):
    proj = _project(tmp_path, BASE)
    suite = load_suite("mine", project=proj)
    mine = tmp_path.resolve() / "vectors" / "fineprint_survive.toml"
    assert suite.vector("fineprint_survive").path.resolve() == mine
    assert suite.vector("fineprint_survive").size == (64, 80)  # the project's, not the built-in 256 x 256
    theirs = builtin_dir("vectors") / "fineprint_survive.toml"
    assert suite.notes == (f"project vectors shadow built-in ones of the same id, the project's being used: "
                           f"fineprint_survive ({suite.vector('fineprint_survive').path} over {theirs})",)
    # a built-in suite that uses a shadowed vector runs the project's too
    smoke = load_suite("smoke", project=proj)
    assert "fineprint_survive" not in smoke.vectors and smoke.notes == ()  # notes only for vectors it uses


def test_one_checkout_runs_with_harness_installed_from_another(tmp_path):
    """Every vector of this repository is also a built-in of the installed harness (another checkout):
    no duplicate-id error, the checkout's own files win."""
    other = tmp_path / "checkout"
    shutil.copytree(builtin_dir("vectors"), other / "vectors")
    (other / "pyproject.toml").write_text('[tool.harness]\nvectors = "vectors"\nsuites = "vectors/suites"\n',
                                          encoding="utf-8")
    suite = load_suite("smoke", project=load_project(other))
    assert suite.path == (other / "vectors" / "suites" / "smoke.toml").resolve()
    assert all(v.path.resolve().is_relative_to(other.resolve()) for v in suite.vector_defs)
    assert len(suite.notes) == 1 and suite.notes[0].count(" over ") == len(suite.vectors) == 6


def test_the_run_report_and_vectors_list_carry_the_note(tmp_path, monkeypatch, capsys):
    proj = _project(tmp_path, BASE)
    monkeypatch.chdir(tmp_path)
    assert main(["vectors", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("fineprint_survive "))
    assert line.endswith(f"(shadows {builtin_dir('vectors') / 'fineprint_survive.toml'})")
    assert main(["run", "--suite", "mine", "--out", str(tmp_path / "r")]) == 1  # no baselines yet
    err = capsys.readouterr().err
    assert err.count("note: project vectors shadow built-in ones") == 1  # printed once
    report = json.loads(next((tmp_path / "r").glob("*/report.json")).read_text(encoding="utf-8"))
    assert [n for n in report["notes"] if "shadow" in n] == list(load_suite("mine", project=proj).notes)
