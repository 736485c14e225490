"""`harness bake` as a reviewed change: the approval (who, when, why, which run) in each baseline
written and in its git diff, --dry-run, and which existing baselines a re-bake rewrites
(beyond tolerance, a config change, named by -k, --force), --reason where it is required."""

import json
import os
import shutil

import pytest

from harness.naming import case_slug
from harness.suite.baselines import BaselineStore

from bake_helpers import BIG, S1, S2, S3, SUITE, TINY, bake, edited, git, lines_of, measured, state  # noqa: F401

def test_within_tolerance_is_kept_beyond_is_rewritten(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b") == 0
    before = state(tmp_path / "b")
    moved = edited(run, tmp_path / "moved", {S1: TINY, S2: BIG})
    capsys.readouterr()
    assert bake(suite, moved, tmp_path / "b", "--reason", "mid band sharpened on purpose") == 0
    out = capsys.readouterr().out
    store = BaselineStore("rv", tmp_path / "b")
    [kept] = lines_of(out, "unchanged ")
    assert kept.startswith(f"unchanged {store.path_for(S1)}  (within tolerance: largest move band_power [band=low ch=Y] ")
    assert kept.endswith(" × tolerance)")
    [changed] = lines_of(out, "changed ")
    assert changed.startswith(f"changed   {store.path_for(S2)}  (1 slice(s) beyond tolerance, worst band_power "
                              "[band=mid ch=Y] ")
    assert out.splitlines()[-1] == f"baselines {store.dir}: 1 changed, 1 unchanged, 1 unchanged (within tolerance)"
    after = state(tmp_path / "b")
    s1, s2, s3 = (f"rv/caption_portrait/p/s{i}.json" for i in (1, 2, 3))
    assert after[s1] == before[s1] and after[s2] != before[s2]  # s3 did not move at all:
    assert after[s3] == before[s3]
    doc = json.loads(after[s2][0])
    assert [a["reason"] for a in doc["approvals"]] == ["mid band sharpened on purpose", None]
    old = json.loads(before[s2][0])["measurement"]["metrics"]["band_power"]["band=mid ch=Y"][0]
    assert store.verify().ok and store.load(S2).measurement.value("band_power", "band=mid ch=Y") == \
        pytest.approx(3 * old, rel=1e-6)


def test_a_case_named_by_k_or_forced_is_rewritten(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b") == 0
    moved = edited(run, tmp_path / "moved", {S1: TINY, S2: TINY})
    capsys.readouterr()
    assert bake(suite, moved, tmp_path / "b", "-k", "caption_portrait/p/s1 or s2") == 0
    out = capsys.readouterr().out
    store = BaselineStore("rv", tmp_path / "b")
    assert lines_of(out, "changed ") == [
        f"changed   {store.path_for(S1)}  (named by -k; values moved within tolerance: largest move band_power "
        f"[band=low ch=Y] " + lines_of(out, "changed ")[0].split("[band=low ch=Y] ", 1)[1]]
    assert lines_of(out, "unchanged ")[0].startswith(f"unchanged {store.path_for(S2)}  (within tolerance")
    # a bare vector selects cases, it does not name them
    assert bake(suite, moved, tmp_path / "b", "-k", "caption_portrait") == 0
    assert lines_of(capsys.readouterr().out, "changed ") == []
    assert bake(suite, moved, tmp_path / "b", "--force") == 2
    assert capsys.readouterr().err == ("harness: error: --force rewrites baselines that did not change beyond "
                                       "tolerance: say why with --reason TEXT (it is recorded in each baseline "
                                       "written)\n")
    assert bake(suite, moved, tmp_path / "b", "--force", "--reason", "  ") == 2
    assert "--reason: empty" in capsys.readouterr().err
    assert bake(suite, moved, tmp_path / "b", "--force", "--reason", "new reference machine") == 0
    out = capsys.readouterr().out
    assert [x.split()[0] for x in out.splitlines()] == ["changed", "baselines"]  # s2; s1 was rewritten above
    assert "(--force; values moved within tolerance" in out


def test_a_pipeline_change_rewrites_and_says_what(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b") == 0
    other = tmp_path / "other"
    shutil.copytree(run, other)
    for p in (other / "report.json", other / "cases" / f"{case_slug(S3)}.json"):  # as if measured dilating 6 px
        doc = json.loads(p.read_text())
        for case in doc["cases"] if "cases" in doc else [doc["case"]]:
            if case["id"] == S3:
                case["config"]["pipeline"]["mask"]["dilate_px"] = 6
        p.write_text(json.dumps(doc))
    capsys.readouterr()
    assert bake(suite, other, tmp_path / "b", "--dry-run") == 0
    out = capsys.readouterr().out
    assert f"changed   {BaselineStore('rv', tmp_path / 'b').path_for(S3)}  (pipeline changed: mask.dilate_px " \
           "2 → 6)" in out


def test_dry_run_writes_nothing(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b", "-k", "s1 or s2") == 0
    smaller = tmp_path / "rv.toml"
    smaller.write_text(SUITE.replace("seeds = [1, 2, 3]", "seeds = [2, 3]"))
    moved = edited(run, tmp_path / "moved", {S2: BIG})
    before = state(tmp_path / "b")
    capsys.readouterr()
    assert bake(smaller, moved, tmp_path / "b", "--dry-run", "--prune") == 0
    out = capsys.readouterr().out.splitlines()
    store = BaselineStore("rv", tmp_path / "b")
    assert out[0] == f"dry run: nothing is written to {store.dir}"
    assert [x.split()[:2] for x in out[1:4]] == [["changed", str(store.path_for(S2))],
                                                ["new", str(store.path_for(S3))],
                                                ["removed", str(store.path_for(S1))]]
    assert out[-1] == f"baselines {store.dir} (dry run, nothing written): 1 changed, 1 new, 1 removed"
    assert bake(smaller, moved, tmp_path / "b", "--dry-run") == 0
    assert f"obsolete  {store.path_for(S1)} (kept; --prune removes it)" in capsys.readouterr().out
    assert state(tmp_path / "b") == before  # bytes and mtimes of every file and folder
    assert bake(suite, run, tmp_path / "fresh", "--dry-run") == 0
    assert not (tmp_path / "fresh").exists()


def test_in_ci_a_changed_baseline_needs_a_reason(measured, tmp_path, capsys, monkeypatch):
    suite, run = measured
    monkeypatch.setenv("CI", "true")
    assert bake(suite, run, tmp_path / "b") == 0  # new baselines: no reason needed
    before = state(tmp_path / "b")
    moved = edited(run, tmp_path / "moved", {S2: BIG})
    capsys.readouterr()
    assert bake(suite, moved, tmp_path / "b") == 2
    assert capsys.readouterr().err == ("harness: error: --reason: required in CI (CI=true) when existing baselines "
                                       f"change ({S2}); nothing was written\n")
    assert state(tmp_path / "b") == before
    assert bake(suite, moved, tmp_path / "b", "--reason", "approved in review #42") == 0


def test_the_reason_is_in_the_baseline_and_its_git_diff_reads_line_by_line(measured, tmp_path, capsys, monkeypatch):
    suite, run = measured
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Ann Example")
    git(repo, "config", "user.email", "ann@example.org")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setattr("harness.cli.bake_review._now", lambda: "2026-01-05T10:12:00Z")
    assert bake(suite, run, repo / "baselines") == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baselines")
    moved = edited(run, tmp_path / "moved", {S2: BIG})
    monkeypatch.setattr("harness.cli.bake_review._now", lambda: "2026-01-06T09:00:00Z")
    assert bake(suite, moved, repo / "baselines", "--reason", "sharper mid band (PR #7)") == 0
    diff = git(repo, "diff", "-U0", "--", "baselines/rv/caption_portrait/p/s2.json")
    changed = [x for x in diff.splitlines() if x[:1] in "+-" and not x.startswith(("+++", "---"))]
    approval = ('{"at":"2026-01-06T09:00:00Z","by":"Ann Example <ann@example.org>","git_sha":"' + "a" * 40
                + '","reason":"sharper mid band (PR #7)","run":"' + run.name + '"},')
    assert "+  " + approval in changed
    assert not any("2026-01-05" in x for x in changed)  # the first approval stays, one line below
    values = [x for x in changed if '"band=mid ch=Y"' in x]
    assert [x[:1] for x in values] == ["-", "+"] and all(x.split(":")[0].strip("+- ") == '"band=mid ch=Y"'
                                                         for x in values)
    assert len(changed) <= 12  # the approval, the value, and the few whole-image numbers it moves
