"""`harness run`, `bake`, `diff`, `report`, `vectors` through the CLI entry point."""

import json

import pytest

from harness.cli import main

SUITE = '''
name = "cli"
seeds = [1]
vectors = ["caption_portrait"]

[pipelines.p]
detect = { backend = "ground_truth" }
mask = { backend = "shape", dilate_px = 2 }
inpaint = { backend = "telea" }
denoise = { backend = "nlmeans", strength = DENOISE }
'''


@pytest.fixture()
def env(tmp_path):
    suite = tmp_path / "cli.toml"
    suite.write_text(SUITE.replace("DENOISE", "0.45"))
    return tmp_path, suite


def last_line(capsys):
    out, err = capsys.readouterr()
    return out.strip().splitlines()[-1], out, err


def test_run_bake_run_diff_report(env, capsys):
    tmp, suite = env
    base = ["--suite", str(suite), "--cache", str(tmp / "cache")]
    assert main(["run", *base, "--out", str(tmp / "r")]) == 1  # no baseline yet
    run1, out, err = last_line(capsys)
    assert "harness bake --suite" in err and "[1/1] fail" in err
    assert main(["bake", *base, "--from-report", run1, "--baselines", str(tmp / "b")]) == 0
    out = capsys.readouterr().out
    assert "new       " in out and "1 new" in out
    assert main(["bake", *base, "--from-report", run1, "--baselines", str(tmp / "b")]) == 0
    assert "1 unchanged" in capsys.readouterr().out  # re-baking the same run changes nothing
    # baselines live in tmp here: point the runner at them through the API the CLI uses
    from harness.run.runner import run_suite
    from harness.suite.suites import load_suite

    rep, run2 = run_suite(load_suite(suite), out_root=tmp / "r", baselines_root=tmp / "b")
    assert rep.status == "pass"
    suite.write_text(SUITE.replace("DENOISE", "0.95"))
    rep3, run3 = run_suite(load_suite(suite), out_root=tmp / "r", baselines_root=tmp / "b")
    assert rep3.status == "fail"
    assert main(["diff", str(run2), str(run3), "--out", str(tmp / "d")]) == 1
    out = capsys.readouterr().out
    assert "regression(s)" in out and "! caption_portrait/p  pass → fail in 1/1 seeds" in out
    assert json.loads((tmp / "d" / "diff.json").read_text())["rows"][0]["regressed"] is True
    assert main(["report", str(run3)]) == 0
    assert (run3 / "summary.md").read_text().startswith("# harness run")
    assert '<details class="c" data-st="fail" data-q="caption_portrait/p/s1' in (run3 / "index.html").read_text()
    assert list((run3 / "charts").glob("*.png"))
    import pandas as pd

    df = pd.read_parquet(run3 / "checks.parquet")
    assert set(df["status"]) >= {"pass", "fail"} and (df["case"] == "caption_portrait/p/s1").all()


@pytest.mark.parametrize("argv,msg", [
    (["run", "--suite", "nosuch"], "no such suite in "),
    (["run", "--seeds", "1,x"], "--seeds '1,x': expected comma-separated integers"),
    (["run", "-k", "no_such_case"], "selects no case of suite 'smoke'"),
    (["run", "--executor", "slurm", "-k", "caption"], "--executor 'slurm': choose one of local, ray"),
    (["diff", "nope_a", "nope_b"], "nope_a: no report.json here"),
    (["report", "nope"], "no report.json here"),
    (["vectors", "show", "nope"], "unknown vector 'nope'; known: "),
])
def test_bad_options_exit_2_with_one_line(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_suite_file_exit_2(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text(SUITE.replace("telea", "lama").replace("DENOISE", "0.4"))
    assert main(["run", "--suite", str(p)]) == 2
    assert "pipelines.p.inpaint: unknown inpaint backend 'lama'" in capsys.readouterr().err


def test_vectors_list_and_show(tmp_path, capsys):
    assert main(["vectors", "list"]) == 0
    out = capsys.readouterr().out
    assert "microprint_dilation" in out and "receipt_microprint" in out
    assert main(["vectors", "show", "receipt_microprint", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "anchor   microprint" in out
    assert (tmp_path / "receipt_microprint" / "image.png").is_file()


def test_ray_executor_without_ray_is_a_clear_error(capsys, monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **kw):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code = main(["run", "--executor", "ray", "-k", "caption_portrait/classic/s1", "--out", str(tmp_path),
                 "--no-cache"])
    assert code == 2
    assert "--executor ray needs the 'ray' package" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def _interrupted_run(tmp, suite, after: int = 1):
    """A run of ``suite`` stopped (like a Ctrl-C) after ``after`` recorded cases: its folder."""
    from harness.run.runner import run_suite
    from harness.suite.suites import load_suite

    seen = []

    def progress(line):
        seen.append(line)
        if len(seen) == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(load_suite(suite), out_root=tmp / "r", baselines_root=tmp / "b", run_id="stopped", progress=progress)
    return tmp / "r" / "stopped"


@pytest.fixture()
def two_seeds(tmp_path):
    suite = tmp_path / "cli.toml"
    suite.write_text(SUITE.replace("DENOISE", "0.45").replace("seeds = [1]", "seeds = [1, 2]"))
    return tmp_path, suite


def test_diff_and_report_of_an_incomplete_run(two_seeds, capsys):
    tmp, suite = two_seeds
    stopped = _interrupted_run(tmp, suite)
    assert main(["run", "--suite", str(suite), "--out", str(tmp / "r"), "--baselines", str(tmp / "b"), "-q",
                 "--no-cache"]) == 1
    done = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["diff", done, str(stopped)]) == 1
    out, err = capsys.readouterr()
    assert f"! REPORT_B {stopped} (run stopped) is INCOMPLETE: 1 of 2 planned cases have results" in out
    assert err.startswith(f"harness: REPORT_B {stopped} (run stopped) is INCOMPLETE") and "fails the diff" in err
    assert main(["diff", str(stopped), done]) == 1
    assert "REPORT_A" in capsys.readouterr().err
    assert main(["report", str(stopped)]) == 0
    assert "is an INCOMPLETE run (1 of 2 planned cases have results" in capsys.readouterr().err
    assert "INCOMPLETE RUN — NOT A PASS" in (stopped / "summary.md").read_text()
    assert "INCOMPLETE RUN &mdash; NOT A PASS" in (stopped / "index.html").read_text()


def test_resume_finishes_the_missing_cases(two_seeds, capsys):
    tmp, suite = two_seeds
    stopped = _interrupted_run(tmp, suite)
    assert main(["run", "--resume", str(stopped), "--no-cache"]) == 1  # no baselines: both cases fail
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(stopped) and "[2/2] fail  caption_portrait/p/s2" in err
    doc = json.loads((stopped / "report.json").read_text())
    assert doc["complete"] is True and [c["id"] for c in doc["cases"]] == ["caption_portrait/p/s1",
                                                                          "caption_portrait/p/s2"]
    assert doc["environment"]["resumed"][0]["recorded_before"] == 1


@pytest.mark.parametrize("change,msg", [
    (lambda s: s.write_text(s.read_text().replace("0.45", "0.5")), "cli.toml (or one of its vectors) changed since"),
    (None, "it was run with --seeds [1, 2], not [1]"),
])
def test_resume_refuses_another_suite_or_selection(two_seeds, capsys, change, msg):
    tmp, suite = two_seeds
    stopped = _interrupted_run(tmp, suite)
    argv = ["run", "--resume", str(stopped), "--no-cache"]
    if change:
        change(suite)
    else:
        argv += ["--seeds", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: --resume {stopped}: ") and msg in err and err.count("\n") == 1
    assert json.loads((stopped / "report.json").read_text())["complete"] is False  # untouched


@pytest.mark.parametrize("argv,msg", [
    (["run", "--timeout", "0", "-k", "caption"], "--timeout 0: expected a number of seconds > 0"),
    (["run", "--resume", "no_such_run"], "--resume no_such_run: not a run folder (no report.json)"),
])
def test_run_option_errors_exit_2(argv, msg, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1
