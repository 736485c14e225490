"""The wheel's contents: every package listed, the built-in data shipped, the public API typed."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_under_harness_is_listed_for_the_wheel():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "harness").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    mapped = _pyproject()["tool"]["setuptools"]["package-dir"]
    assert mapped == {"harness._builtin.vectors": "vectors", "harness._builtin.baselines": "baselines"}
    assert listed - found == set(mapped)


def test_package_data_globs_cover_every_builtin_file():
    import fnmatch

    data = _pyproject()["tool"]["setuptools"]["package-data"]
    for pkg, folder in (("harness._builtin.vectors", "vectors"), ("harness._builtin.baselines", "baselines")):
        files = [p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*")
                 if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
        assert files
        missing = [f for f in files if not any(fnmatch.fnmatch(f, g) or fnmatch.fnmatch(f, g.replace("**/", ""))
                                               for g in data[pkg])]
        assert missing == [], f"{folder}/ files that the wheel would leave out: {missing}"


def test_py_typed_marker_ships():
    assert (ROOT / "harness" / "py.typed").is_file()
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["harness"]
