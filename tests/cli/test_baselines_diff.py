"""`harness baselines diff`: a baseline change in words (value changes by slice group, config,
approval), between two folders, git revisions, or the stored baselines and a run."""

import json
import os
import shutil

import pytest

from harness.cli import main
from harness.naming import case_slug
from harness.report.baselinediff import _amount, diff_case
from harness.suite.baselines.document import read_document

from bake_helpers import BIG, S2, S3, bake, edited, git, measured  # noqa: F401


def diff(capsys, *args):
    rc = main(["baselines", "diff", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err


def with_dilation(run, dest, case_id, px):
    """A copy of ``run`` whose ``case_id`` reads as measured with another mask dilation."""
    shutil.copytree(run, dest)
    for p in (dest / "report.json", dest / "cases" / f"{case_slug(case_id)}.json"):
        doc = json.loads(p.read_text())
        for case in doc["cases"] if "cases" in doc else [doc["case"]]:
            if case["id"] == case_id:
                case["config"]["pipeline"]["mask"]["dilate_px"] = px
        p.write_text(json.dumps(doc))
    return dest


def test_amounts_in_words():
    assert _amount("band_power", 100.0, 7.0) == "−93 %"
    assert _amount("band_power", 100.0, 300.0) == "+200 %"
    assert _amount("band_power", 100.0, 101.0) == "+1 %"
    assert _amount("band_power", 0.01, 300.0) == "0.01 → 300 code²"  # from next to nothing: no percentage
    assert _amount("anchor_clipped_px", 0.0, 263.0) == "0 → 263 px"
    assert _amount("seam_step", 0.5, -118.4) == "0.5 → −118.4 code"
    assert _amount("mask_coverage", 0.02, 0.04) == "+100 %"


def test_two_folders_say_what_changed_and_who_approved_it(measured, tmp_path, capsys, monkeypatch):
    suite, run = measured
    monkeypatch.setattr("harness.cli.bake_review.baker", lambda where: "Ann <ann@x.org>")
    monkeypatch.setattr("harness.cli.bake_review._now", lambda: "2026-01-06T09:00:00Z")
    assert bake(suite, run, tmp_path / "a") == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = with_dilation(edited(run, tmp_path / "moved", {S2: BIG}), tmp_path / "moved6", S3, 6)
    assert bake(suite, moved, tmp_path / "b", "--reason", "sharper mid band (PR #7)") == 0
    capsys.readouterr()
    rc, out, _ = diff(capsys, tmp_path / "a" / "rv", tmp_path / "b" / "rv")
    approved = (f'          approved by Ann <ann@x.org> at 2026-01-06T09:00:00Z: "sharper mid band (PR #7)" '
                f'(run {run.name}, git aaaaaaaaaa)')
    assert rc == 0 and out == [
        f"baselines diff {tmp_path / 'a' / 'rv'} → {tmp_path / 'b' / 'rv'}",
        "changed   caption_portrait/p/s2: band=mid energy +200 %",
        approved,
        "changed   caption_portrait/p/s3: same values",
        "          config: mask.dilate_px 2 → 6",
        approved,
        "2 changed, 0 new, 0 removed, 1 unchanged case(s)",
    ]
    rc, out, _ = diff(capsys, tmp_path / "b" / "rv", tmp_path / "a" / "rv")  # the other way round
    assert out[1] == "changed   caption_portrait/p/s2: band=mid energy −67 %"
    assert out[4] == "          config: mask.dilate_px 6 → 2"


def test_git_head_against_the_working_tree(measured, tmp_path, capsys, monkeypatch):
    suite, run = measured
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Ann Example")
    git(repo, "config", "user.email", "ann@example.org")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    assert bake(suite, run, repo / "baselines", "-k", "s1 or s2") == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baselines")
    assert bake(suite, edited(run, tmp_path / "moved", {S2: BIG}), repo / "baselines", "--reason", "why not") == 0
    capsys.readouterr()
    rc, out, _ = diff(capsys, "--baselines", repo / "baselines")
    assert rc == 0 and out[0] == f"baselines diff {repo / 'baselines'}: HEAD → working tree"
    assert out[1] == "changed   rv/caption_portrait/p/s2: band=mid energy +200 %"
    assert out[2].startswith('          approved by Ann Example <ann@example.org> at ') and '"why not"' in out[2]
    assert out[3] == "new       rv/caption_portrait/p/s3"
    assert out[-1] == "1 changed, 1 new, 0 removed, 1 unchanged case(s)"
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "re-baked")
    rc, out, _ = diff(capsys, "--baselines", repo / "baselines", "--suite", "rv", "HEAD~1", "HEAD")
    assert out[1] == "changed   caption_portrait/p/s2: band=mid energy +200 %" and out[3] == "new       caption_portrait/p/s3"
    rc, out, err = diff(capsys, "--baselines", repo / "baselines", "nosuchrev")
    assert rc == 2 and err.startswith("harness: error: git ls-tree -r --name-only -z nosuchrev") and err.count("\n") == 1


def test_from_report_says_what_a_bake_would_change(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b") == 0
    capsys.readouterr()
    moved = edited(run, tmp_path / "moved", {S2: BIG})
    rc, out, _ = diff(capsys, "--baselines", tmp_path / "b", "--from-report", moved)
    assert rc == 0 and out[1:] == ["changed   caption_portrait/p/s2: band=mid energy +200 %",
                                   "1 changed, 0 new, 0 removed, 2 unchanged case(s)"]


def test_a_one_line_file_and_its_reviewable_layout_read_the_same(measured, tmp_path, capsys):
    suite, run = measured
    assert bake(suite, run, tmp_path / "b", "-k", "s1") == 0
    capsys.readouterr()
    new = tmp_path / "b" / "rv" / "caption_portrait" / "p" / "s1.json"
    doc = read_document(new.read_bytes())
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**doc, "schema_version": 1}, sort_keys=True, separators=(",", ":")) + "\n")
    assert old.read_text().count("\n") == 1 and new.read_text().count("\n") > 1000
    assert read_document(old.read_bytes()) == {**doc, "schema_version": 1}
    assert diff_case("x", read_document(old.read_bytes()), doc).status == "unchanged"
    rc, out, _ = diff(capsys, old, new)
    assert out[1:] == ["0 changed, 0 new, 0 removed, 1 unchanged case(s)"]
    rc, out, err = diff(capsys, old, "HEAD")
    assert rc == 2 and "give A and B of one kind" in err


def test_an_unreadable_version_is_exit_2_naming_it(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "s1.json").write_text('{"schema_version": 9}')
    rc, _, err = diff(capsys, tmp_path / "a", tmp_path / "b")
    assert rc == 2 and err == (f"harness: error: {tmp_path / 'b' / 's1.json'}: not a baseline document "
                               "(schema_version 9, expected one of [1, 2])\n")
