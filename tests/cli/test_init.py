"""`harness init`: a project a user can bake and run at once; never overwrites."""

import tomllib

import numpy as np
from PIL import Image

from harness.cli import main
from harness.suite.suites import load_suite
from harness.project import load_project


def test_init_then_bake_then_run_pass_and_use_the_custom_backend(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    out = capsys.readouterr().out
    assert "harness bake" in out and "harness run" in out and "upload-artifact" in out  # next steps + CI snippet
    proj = load_project(tmp_path)
    assert proj.config_file == (tmp_path / "pyproject.toml").resolve()
    suite = load_suite(project=proj)
    assert suite.name == "smoke" and [v.id for v in suite.vector_defs] == ["example"]
    backends = {s.backend for p in suite.pipelines for s in p.stages if s.stage == "denoise"}
    assert backends == {"tv", "harness_backends:gentle_denoise"}
    assert suite.vector("example").source["kind"] == "file"
    assert main(["bake"]) == 0
    assert len(list((tmp_path / "baselines" / "smoke").rglob("s*.json"))) == 4
    assert main(["run", "-q"]) == 0
    # the custom backend really ran: its stage output differs from the built-in pipeline's
    runs = sorted((tmp_path / "reports").glob("*-smoke"))
    from harness.report.schema import load_report
    from harness.run.store import resolve_artifact

    report = load_report(runs[-1])
    assert report.environment["store"] == str((tmp_path / ".harness-store").resolve())
    art = {c.pipeline: resolve_artifact(c.artifacts["denoise"], runs[-1], report.environment["store"])
           for c in report.cases}
    a, b = np.asarray(Image.open(art["builtin"])), np.asarray(Image.open(art["custom"]))
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() > 0


def test_init_uses_the_users_image_and_appends_to_an_existing_pyproject(tmp_path, capsys):
    img = np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "mine.jpg", quality=95)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text('[project]\nname = "theirs"\n', encoding="utf-8")
    assert main(["init", str(tmp_path / "repo"), "--image", str(tmp_path / "mine.jpg")]) == 0
    doc = tomllib.loads((tmp_path / "repo" / "pyproject.toml").read_text(encoding="utf-8"))
    assert doc["project"]["name"] == "theirs" and doc["tool"]["harness"]["suite"] == "smoke"
    saved = np.asarray(Image.open(tmp_path / "repo" / "vectors" / "assets" / "example.png"))
    assert saved.shape == (80, 120, 3)


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "vectors" / "suites").mkdir(parents=True)
    (tmp_path / "vectors" / "suites" / "smoke.toml").write_text("mine", encoding="utf-8")
    (tmp_path / "harness_backends.py").write_text("# mine", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "smoke.toml" in err and "harness_backends.py" in err
    assert "nothing written" in err
    assert not (tmp_path / "pyproject.toml").exists() and not (tmp_path / "vectors" / "example.toml").exists()
    assert (tmp_path / "harness_backends.py").read_text(encoding="utf-8") == "# mine"


def test_init_refuses_a_pyproject_that_already_configures_harness(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text("[tool.harness]\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert "pyproject.toml" in capsys.readouterr().err


def test_init_with_an_unreadable_image_is_an_input_error(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["init", str(tmp_path / "p"), "--image", str(tmp_path / "bad.png")]) == 2
    assert "bad.png" in capsys.readouterr().err
    assert not (tmp_path / "p" / "pyproject.toml").exists()


def test_bake_without_a_project_refuses_to_write_into_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bake", "-k", "nothing"]) == 2
    assert "no harness project here" in capsys.readouterr().err


def _git(root, *args):
    import subprocess

    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True,
                          env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin",
                               "HOME": str(root)}).stdout


def test_init_ignores_the_cache_and_reports_so_git_add_all_commits_neither(tmp_path, capsys):
    _git(tmp_path, "init", "-q")
    assert main(["init", str(tmp_path)]) == 0
    assert f"wrote {tmp_path.resolve() / '.gitignore'}" in capsys.readouterr().out
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8").splitlines()[-3:] == ["/.harness-cache/",
                                                                                      "/.harness-store/", "/reports/"]
    # what `harness bake` / `harness run` leave behind
    (tmp_path / ".harness-cache" / "ab").mkdir(parents=True)
    (tmp_path / ".harness-cache" / "ab" / "abcdef.npz").write_bytes(b"entry")
    (tmp_path / ".harness-store" / "objects" / "ab").mkdir(parents=True)
    (tmp_path / ".harness-store" / "objects" / "ab" / ("c" * 62 + ".png")).write_bytes(b"png")
    (tmp_path / "reports" / "20260101-smoke").mkdir(parents=True)
    (tmp_path / "reports" / "20260101-smoke" / "report.json").write_text("{}", encoding="utf-8")
    _git(tmp_path, "add", "-A")
    staged = sorted(_git(tmp_path, "diff", "--cached", "--name-only").split())
    assert staged == [".gitignore", "harness_backends.py", "pyproject.toml", "vectors/assets/example.png",
                      "vectors/example.toml", "vectors/suites/smoke.toml"]


def test_init_appends_only_the_missing_lines_to_an_existing_gitignore(tmp_path):
    (tmp_path / ".gitignore").write_text("node_modules/\n.harness-cache\n", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == (
        "node_modules/\n.harness-cache\n\n# harness: stage cache, image store and run folders (outputs, never "
        "committed)\n/.harness-store/\n/reports/\n")


def test_init_keeps_a_gitignore_that_already_covers_both_folders_byte_for_byte(tmp_path, capsys):
    mine = "/reports/*\n!/reports/README.md\n/.harness-cache/\n.harness-store\n"  # a later /reports/ would undo the exception
    (tmp_path / ".gitignore").write_text(mine, encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == mine
    assert ".gitignore" not in capsys.readouterr().out
