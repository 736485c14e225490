"""`harness bake`: byte-identical re-bakes, incomplete runs refused, strays reported, the
file system refusing a write is exit 2 naming the path, two bakes at once both land."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import fsio
from harness.cli import main
from harness.naming import case_slug
from harness.suite.baselines import BaselineStore

SUITE = '''
name = "bk"
seeds = [1, 2, 3, 4]
vectors = ["caption_portrait"]

[pipelines.p]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
'''
CASES = [f"caption_portrait/p/s{i}" for i in (1, 2, 3, 4)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of one suite measured apart (own caches), in different environments: another
    git sha, -k, run id."""
    tmp = tmp_path_factory.mktemp("bake")
    suite = tmp / "bk.toml"
    suite.write_text(SUITE)
    out = []
    with pytest.MonkeyPatch.context() as m:
        for i, extra in enumerate([[], ["-k", "caption_portrait"]]):
            m.setattr("harness.run.environment._git_sha", lambda where, i=i: f"{i}" * 40)
            rc = main(["run", "--suite", str(suite), "--out", str(tmp / "r"), "--cache", str(tmp / f"cache{i}"),
                       "--baselines", str(tmp / "none"), *extra])
            assert rc == 1  # no baselines there
            out.append(max((tmp / "r").iterdir(), key=lambda p: p.stat().st_mtime_ns))
    assert json.loads((out[0] / "report.json").read_text())["environment"]["git_sha"] != \
        json.loads((out[1] / "report.json").read_text())["environment"]["git_sha"]
    return suite, out[0], out[1]


def bake(suite, run, baselines, *extra):
    return main(["bake", "--suite", str(suite), "--from-report", str(run), "--baselines", str(baselines), *extra])


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def without_approvals(body: bytes) -> dict:
    doc = json.loads(body)
    doc.pop("approvals")
    return doc


def test_rebake_from_another_run_is_byte_identical_and_unchanged(runs, tmp_path, capsys):
    suite, run1, run2 = runs
    assert bake(suite, run1, tmp_path / "b") == 0
    assert capsys.readouterr().out.endswith(": 4 new\n")
    first = snapshot(tmp_path / "b")
    assert bake(suite, run2, tmp_path / "b", "-v") == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == ["unchanged"] * 4 + ["baselines"]
    assert snapshot(tmp_path / "b") == first  # not rewritten: no new approval either
    assert bake(suite, run2, tmp_path / "b2") == 0  # baked from the other run into a fresh folder
    second = snapshot(tmp_path / "b2")
    assert sorted(second) == sorted(first)
    for rel, body in first.items():
        if not rel.endswith("MANIFEST.json"):  # the same record; only who/when/which run differ
            assert without_approvals(second[rel]) == without_approvals(body)
            [a1], [a2] = json.loads(body)["approvals"], json.loads(second[rel])["approvals"]
            assert (a1["run"], a2["run"]) == (run1.name, run2.name)
            assert (a1["git_sha"], a2["git_sha"]) == ("0" * 40, "1" * 40)
    for body in first.values():
        text = "".join(line for line in body.decode().splitlines(True) if '"run":' not in line)  # an approval line
        for unstable in (str(tmp_path.parent), "/tmp", "0" * 40, "suite_file", "platform", run1.name, "workers",
                         '"k"', "created"):
            assert unstable not in text, unstable


def incomplete_copy(run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    doc = json.loads((partial / "report.json").read_text())
    doc["complete"] = False
    doc["cases"] = doc["cases"][:2]
    for case in CASES[2:]:  # the run was killed before these two
        (partial / "cases" / f"{case_slug(case)}.json").unlink()
    (partial / "report.json").write_text(json.dumps(doc))
    return partial


def test_an_incomplete_run_is_refused_unless_allowed(runs, tmp_path, capsys):
    suite, run1, _ = runs
    partial = incomplete_copy(run1, tmp_path)
    assert bake(suite, partial, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--from-report {partial}: the run is incomplete" in err
    assert "--allow-incomplete" in err and not (tmp_path / "b").exists()
    assert bake(suite, partial, tmp_path / "b", "--allow-incomplete") == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("incomplete "))
    assert line.startswith(f"incomplete {partial}: a partial run (") and "--allow-incomplete): baked only the 2 " in line
    assert BaselineStore("bk", tmp_path / "b").case_ids() == CASES[:2]


def test_strays_and_temp_files_are_reported(runs, tmp_path, capsys):
    suite, run1, _ = runs
    assert bake(suite, run1, tmp_path / "b", "-k", "s1 or s2") == 0
    folder = tmp_path / "b" / "bk" / "caption_portrait" / "p"
    (folder / "s9.json").write_text("{}")
    (folder / "s1.json~").write_text("{}")
    (folder / ".s3.json.x1y2z3w4.tmp").write_text("{half")
    capsys.readouterr()
    assert bake(suite, run1, tmp_path / "b") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"cleaned   {folder / '.s3.json.x1y2z3w4.tmp'}  (temp file of an interrupted write; deleted)"
    assert lines[1:3] == [f"new       {folder / 's3.json'}", f"new       {folder / 's4.json'}"]
    assert lines[3:5] == [f"stray     {folder / 's1.json~'}  (not in MANIFEST.json: bake its case or delete it)",
                          f"stray     {folder / 's9.json'}  (not in MANIFEST.json: bake its case or delete it)"]
    assert lines[5].endswith(": 1 cleaned, 2 new, 2 stray, 2 unchanged")
    assert (folder / "s9.json").exists() and not (folder / ".s3.json.x1y2z3w4.tmp").exists()


def test_new_only_obsolete_and_prune_still_work(runs, tmp_path, capsys):
    suite, run1, _ = runs
    assert bake(suite, run1, tmp_path / "b") == 0
    smaller = tmp_path / "bk.toml"
    smaller.write_text(SUITE.replace("seeds = [1, 2, 3, 4]", "seeds = [1, 2]"))
    capsys.readouterr()
    assert bake(smaller, run1, tmp_path / "b", "--new-only") == 0
    out = capsys.readouterr().out.splitlines()
    store = BaselineStore("bk", tmp_path / "b")
    assert out[:4] == [f"skipped   {store.path_for(c)}  (exists (--new-only))" for c in CASES]
    assert out[4:6] == [f"obsolete  {store.path_for(c)} (kept; --prune removes it)" for c in CASES[2:]]
    assert bake(smaller, run1, tmp_path / "b", "-k", "s1 or s2") == 0
    assert "obsolete  " not in capsys.readouterr().out  # -k limits what is called obsolete, as before
    assert bake(smaller, run1, tmp_path / "b", "-k", "s3", "--prune") == 0
    out = capsys.readouterr().out.splitlines()
    assert f"removed   {store.path_for(CASES[2])}  (obsolete)" in out
    assert store.case_ids() == [CASES[0], CASES[1], CASES[3]] and store.verify().ok


# -- the file system refuses: exit 2, one line naming the path, a consistent store ----------

def one_line_error(capsys, needle):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and needle in err, err
    return err


def test_baselines_folder_is_a_file(runs, tmp_path, capsys):
    suite, run1, _ = runs
    (tmp_path / "file").write_text("mine")
    assert bake(suite, run1, tmp_path / "file") == 2
    one_line_error(capsys, f"harness: error: {tmp_path / 'file'}: not a folder; cannot write the baselines in")
    assert bake(suite, run1, tmp_path / "file" / "under" / "it") == 2
    one_line_error(capsys, f"harness: error: {tmp_path / 'file'}: not a folder")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bk").write_text("in the way")
    assert bake(suite, run1, tmp_path / "b") == 2
    one_line_error(capsys, f"harness: error: {tmp_path / 'b' / 'bk'}: not a folder")
    assert (tmp_path / "file").read_text() == "mine" and (tmp_path / "b" / "bk").read_text() == "in the way"


@pytest.mark.parametrize("call,err,nth", [("replace", errno.EROFS, 1), ("replace", errno.EROFS, 3),
                                          ("write", errno.ENOSPC, 2), ("write", errno.ENOSPC, 4)])
def test_a_refused_write_is_exit_2_and_the_store_stays_consistent(runs, tmp_path, capsys, monkeypatch, call, err,
                                                                  nth):
    """The nth os.replace / os.write under the baselines folder fails, and every one after
    it (a full disk stays full): what landed is listed, the rest is not made."""
    suite, run1, _ = runs
    assert bake(suite, run1, tmp_path / "b", "-k", "s1") == 0
    capsys.readouterr()
    real, n = getattr(os, call), {"n": 0}

    def refuse(*args):
        target = args[1] if call == "replace" else os.readlink(f"/proc/self/fd/{args[0]}")
        if str(tmp_path / "b") in str(target):
            n["n"] += 1
            if n["n"] >= nth:
                raise OSError(err, os.strerror(err))
        return real(*args)

    with monkeypatch.context() as m:
        m.setattr(fsio.os, call, refuse)
        assert bake(suite, run1, tmp_path / "b") == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and "Traceback" not in out.err and os.strerror(err) in out.err
    assert out.err.startswith(f"harness: error: {tmp_path / 'b' / 'bk'}")  # the file it could not write
    store = BaselineStore("bk", tmp_path / "b")
    check = store.verify()
    assert not check.missing and not check.temps and set(check.mismatched) <= set(check.pending)
    assert store.verify(repair=True).ok and store.load(CASES[0]) is not None
    assert bake(suite, run1, tmp_path / "b") == 0  # once the disk has room, a bake finishes the job
    assert BaselineStore("bk", tmp_path / "b").case_ids() == CASES and store.verify().ok


@pytest.fixture()
def tmpfs(tmp_path):
    mounted = []

    def mount(size, *opts):
        d = tmp_path / f"fs{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *opts]), "tmpfs", str(d)],
                           capture_output=True, text=True, check=False)
        if r.returncode:
            pytest.skip(f"cannot mount a small tmpfs here (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, check=False)


def test_a_really_full_disk(runs, tmp_path, capsys, tmpfs):
    suite, run1, _ = runs
    size = len(next(iter(snapshot(run1 / "cases").values())))  # about one baseline
    fs = tmpfs(f"{(size // 4096 + 4) * 4096}")
    assert bake(suite, run1, fs) == 2
    out = capsys.readouterr()
    assert "No space left on device; cannot write the baselines in" in out.err and out.err.count("\n") == 1
    store = BaselineStore("bk", fs)
    landed = store.case_ids()
    assert [line.split()[1] for line in out.out.splitlines()] == [str(store.path_for(c)) for c in landed]
    assert len(landed) < 4 and store.verify().ok and not store.lock_path.exists()


def test_a_read_only_file_system(runs, tmp_path, capsys, tmpfs):
    suite, run1, _ = runs
    fs = tmpfs("1m")
    assert bake(suite, run1, fs, "-k", "s1") == 0
    before = snapshot(fs)
    r = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True, check=False)
    if r.returncode:
        pytest.skip(f"cannot remount the tmpfs read-only here: {r.stderr.strip()}")
    assert bake(suite, run1, fs) == 2
    one_line_error(capsys, "Read-only file system; cannot write the baselines in")
    assert snapshot(fs) == before


# -- two `harness bake` processes at once --------------------------------------------------

def test_two_bake_commands_at_once_both_land(runs, tmp_path):
    suite, run1, _ = runs
    cmd = [sys.executable, "-m", "harness.cli", "bake", "--suite", str(suite), "--from-report", str(run1)]
    for round_ in range(3):
        b = tmp_path / f"b{round_}"
        procs = [subprocess.Popen([*cmd, "--baselines", str(b), "-k", k], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
                 for k in ("s1 or s2", "s3 or s4")]
        outs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        store = BaselineStore("bk", b)
        files = store.manifest()
        assert sorted(files) == [f"caption_portrait/p/s{i}.json" for i in (1, 2, 3, 4)]
        for rel, digest in files.items():
            assert hashlib.sha256((store.dir / rel).read_bytes()).hexdigest() == digest
        assert all(store.load(c) for c in CASES) and store.verify().ok


# --- a case that fails its own absolute expectations is not baked silently --------------------------------------

FINEPRINT = '''
name = "fp"
seeds = [1]
vectors = ["fineprint_survive"]

# the text detector finds the fine print as text and the pipeline removes it with the logo
[pipelines.ocr]
detect = { backend = "rapidocr", mode = "regions", threshold = 0.3, unclip_ratio = 1.0, box_threshold = 0.8 }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }

[pipelines.ocr_keeps]
detect = { backend = "rapidocr", mode = "regions", threshold = 0.3, unclip_ratio = 1.0, box_threshold = 0.8 }
mask = { backend = "shape", dilate_px = 2, drop_anchor_regions = 0.5 }
inpaint = { backend = "telea" }
'''
REFUSED = (r"refused   fineprint_survive/ocr/s1: fails anchors_survive anchor=0 band=high\+top: anchor 0 \(fineprint\) "
           r"keeps (\d+\.\d)% of the source's high\+top band energy \(< the (\d+\.\d)% required\)")


@pytest.fixture(scope="module")
def fineprint(tmp_path_factory):
    """The suite, a judged run of it (no baselines: both cases fail), and a shared stage cache."""
    tmp = tmp_path_factory.mktemp("fineprint")
    suite = tmp / "fp.toml"
    suite.write_text(FINEPRINT)
    assert main(["run", "--suite", str(suite), "--out", str(tmp / "r"), "--cache", str(tmp / "cache"),
                 "--baselines", str(tmp / "none")]) == 1
    return suite, next((tmp / "r").iterdir()), tmp / "cache"


def test_bake_refuses_a_case_failing_its_expectations_and_exits_1(fineprint, tmp_path, capsys):
    import re

    suite, _, cache = fineprint
    assert main(["bake", "--suite", str(suite), "--baselines", str(tmp_path), "--cache", str(cache)]) == 1
    out = capsys.readouterr().out
    kept, required = (float(x) for x in re.search(REFUSED, out).groups())
    assert kept < 5.0 and 45.0 < required < 55.0  # 0.5 % kept of ~49 % required (the numbers of the issue)
    assert "refused   fineprint_survive/ocr/s1: not baked, the next run would fail it" in out
    assert out.rstrip().endswith(": 1 new; 1 refused")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("s1.json")) == \
        ["fp/fineprint_survive/ocr_keeps/s1.json"]  # only the case that meets its expectations
    # right after baking, the baked case passes
    assert main(["run", "--suite", str(suite), "-k", "ocr_keeps", "--baselines", str(tmp_path), "--cache", str(cache),
                 "--out", str(tmp_path / "r")]) == 0


def test_bake_from_a_judged_report_refuses_the_same_case(fineprint, tmp_path, capsys):
    import re

    suite, run, _ = fineprint
    assert bake(suite, run, tmp_path) == 1
    out = capsys.readouterr().out
    assert re.search(REFUSED, out) and "new       " + str(tmp_path / "fp" / "fineprint_survive" / "ocr_keeps") in out
    assert not (tmp_path / "fp" / "fineprint_survive" / "ocr").exists()


def test_accept_failing_bakes_it_and_records_the_failing_checks(fineprint, tmp_path, capsys):
    suite, run, _ = fineprint
    assert bake(suite, run, tmp_path, "--accept-failing") == 2  # a baseline that blesses a failure says why
    err = capsys.readouterr().err
    assert err == ("harness: error: --accept-failing bakes fineprint_survive/ocr/s1 failing its own expectations: "
                   "say why with --reason TEXT (it is recorded in each baseline written); nothing was written\n")
    assert not (tmp_path / "fp").exists()
    assert bake(suite, run, tmp_path, "--accept-failing", "--reason", "OCR eats the fine print; #123") == 0
    out = capsys.readouterr().out
    assert "accepted  fineprint_survive/ocr/s1: fails anchors_survive anchor=0" in out and "refused" not in out
    doc = json.loads((tmp_path / "fp" / "fineprint_survive" / "ocr" / "s1.json").read_text())
    [acc] = doc["accepted_failing"]
    assert acc["check"] == "expect anchors_survive anchor=0 band=high+top" and acc["bound"] == 1.0
    assert acc["value"] < 0.05 and acc["value"] < acc["bound"] - acc["tolerance"]
    kept = json.loads((tmp_path / "fp" / "fineprint_survive" / "ocr_keeps" / "s1.json").read_text())
    assert "accepted_failing" not in kept  # a passing case's baseline is what it always was
    assert doc["approvals"][0]["reason"] == kept["approvals"][0]["reason"] == "OCR eats the fine print; #123"
