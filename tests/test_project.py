"""Project discovery: found upward like pytest's rootdir, flags override, built-ins otherwise."""

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.project import builtin_dir, find_config, load_project


def write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_no_project_uses_builtins_and_outputs_under_cwd(tmp_path):
    proj = load_project(tmp_path)
    assert not proj.found and proj.config_file is None
    assert proj.vector_roots == (builtin_dir("vectors"),)
    assert proj.suite_dirs == (builtin_dir("vectors") / "suites",)
    assert proj.baselines == builtin_dir("baselines") and proj.baselines_are_builtin
    assert proj.reports == tmp_path.resolve() / "reports"
    assert proj.cache == tmp_path.resolve() / ".harness-cache"
    assert proj.store == proj.store_root == tmp_path.resolve() / ".harness-store"
    assert (builtin_dir("vectors") / "suites" / "smoke.toml").is_file()
    assert (builtin_dir("baselines") / "smoke" / "MANIFEST.json").is_file()


def test_pyproject_table_found_from_a_subfolder_paths_relative_to_the_file(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.harness]\nvectors = "qa/vec"\n'
                                       'baselines = "qa/base"\nsuite = "nightly-ish"\n')
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    proj = load_project(sub)
    root = tmp_path.resolve()
    assert proj.found and proj.config_file == root / "pyproject.toml" and proj.root == root
    assert proj.vectors == root / "qa" / "vec" and proj.baselines == root / "qa" / "base"
    assert proj.suites == root / "vectors" / "suites"  # the default, relative to the file
    assert proj.reports == root / "reports" and proj.default_suite == "nightly-ish"
    assert proj.vector_roots == (root / "qa" / "vec", builtin_dir("vectors"))
    assert not proj.baselines_are_builtin


def test_pyproject_without_table_is_skipped_and_harness_toml_wins_in_one_folder(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.harness]\nreports = "outer"\n')
    write(tmp_path / "inner" / "pyproject.toml", '[project]\nname = "y"\n')  # no table: not a project
    assert load_project(tmp_path / "inner").reports == tmp_path.resolve() / "outer"
    write(tmp_path / "inner" / "harness.toml", 'reports = "mine"\n')
    assert load_project(tmp_path / "inner").reports == (tmp_path / "inner").resolve() / "mine"
    assert find_config(tmp_path / "inner")[0].name == "harness.toml"


def test_default_start_is_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "harness.toml", 'cache = "c"\n')
    monkeypatch.chdir(tmp_path)
    assert load_project().cache == tmp_path.resolve() / "c"


@pytest.mark.parametrize("text,msg", [
    ('vector = "v"\n', r"harness.toml: vector: unknown key; allowed: vectors, suites"),
    ("vectors = 3\n", r"harness.toml: vectors: expected a folder path \(a string\), got 3"),
    ('pythonpath = [1]\n', r"pythonpath: expected a list of folder paths"),
    ("builtins = 1\n", r"builtins: expected true or false, got 1"),
    ("store = 1\n", r"harness.toml: store: expected a folder path \(a string\), got 1"),
    ("store_max_mb = 0\n", r"harness.toml: store_max_mb: expected a whole number of megabytes >= 1, got 0"),
    ("vectors = [\n", r"harness.toml: invalid TOML"),
])
def test_bad_project_file_is_a_config_error_naming_file_and_key(tmp_path, text, msg):
    write(tmp_path / "harness.toml", text)
    with pytest.raises(ConfigError, match=msg):
        load_project(tmp_path)


def test_pyproject_errors_name_the_tool_harness_key(tmp_path):
    write(tmp_path / "pyproject.toml", "[tool.harness]\nreport = 'r'\n")
    with pytest.raises(ConfigError, match=r"pyproject.toml: tool.harness.report: unknown key"):
        load_project(tmp_path)


def test_command_line_overrides_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "p" / "harness.toml", 'vectors = "v"\nsuites = "v/suites"\n')
    monkeypatch.chdir(tmp_path)
    proj = load_project(tmp_path / "p").with_overrides(vectors="other", reports="out", cache=None)
    assert proj.vectors == tmp_path.resolve() / "other"
    assert proj.suites == tmp_path.resolve() / "other" / "suites"  # suites inside vectors follow it
    assert proj.reports == tmp_path.resolve() / "out"
    assert proj.cache == (tmp_path / "p").resolve() / ".harness-cache"
    assert proj.overridden == ("reports", "vectors")


def test_the_image_store_is_configured_like_the_cache_and_overridden_by_store(tmp_path, monkeypatch):
    write(tmp_path / "p" / "harness.toml", 'store = "../shared/images"\nstore_max_mb = 300\n')
    monkeypatch.chdir(tmp_path)
    proj = load_project(tmp_path / "p")
    assert proj.store == tmp_path.resolve() / "shared" / "images" and proj.store_max_mb == 300
    assert proj.to_dict()["store"] == str(proj.store) and f"  store      {proj.store}" in proj.describe()
    assert load_project(tmp_path / "p").with_overrides(store="s").store_root == tmp_path.resolve() / "s"


def test_explicit_project_option(tmp_path):
    write(tmp_path / "a" / "harness.toml", 'reports = "ra"\n')
    assert load_project(config_file=tmp_path / "a").reports == (tmp_path / "a").resolve() / "ra"
    assert load_project(config_file=tmp_path / "a" / "harness.toml").reports == (tmp_path / "a").resolve() / "ra"
    with pytest.raises(ConfigError, match="--project .*: no such file or directory"):
        load_project(config_file=tmp_path / "nope")
    (tmp_path / "b").mkdir()
    with pytest.raises(ConfigError, match=r"--project .*: no harness.toml or pyproject.toml with \[tool.harness\]"):
        load_project(config_file=tmp_path / "b")
    write(tmp_path / "c" / "pyproject.toml", "[project]\nname = 'c'\n")
    with pytest.raises(ConfigError, match=r"no harness.toml or pyproject.toml with \[tool.harness\]"):
        load_project(config_file=tmp_path / "c" / "pyproject.toml")


def test_activate_puts_pythonpath_on_sys_path_once(tmp_path, monkeypatch):
    import sys

    write(tmp_path / "harness.toml", 'pythonpath = ["lib"]\n')
    monkeypatch.setattr(sys, "path", list(sys.path))
    proj = load_project(tmp_path)
    proj.activate()
    proj.activate()
    assert sys.path.count(str(tmp_path.resolve() / "lib")) == 1


def test_builtins_can_be_turned_off(tmp_path):
    write(tmp_path / "harness.toml", "builtins = false\n")
    proj = load_project(tmp_path)
    assert proj.vector_roots == (tmp_path.resolve() / "vectors",)
    assert builtin_dir("vectors") / "suites" not in proj.suite_dirs


def test_this_repository_is_a_project_whose_vectors_are_the_builtins():
    repo = Path(__file__).resolve().parents[1]
    proj = load_project(repo)
    assert proj.config_file == repo / "pyproject.toml"
    assert len(proj.vector_roots) == 1 and proj.vector_roots[0].samefile(builtin_dir("vectors"))


def test_no_module_computes_data_paths_from_its_source_tree():
    root = Path(__file__).resolve().parents[1] / "harness"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "Path(__file__)" in p.read_text(encoding="utf-8")]
    assert offenders == []
