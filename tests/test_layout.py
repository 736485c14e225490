"""The house rules, checked on the source: layers, no import cycles, small functions and modules.

Every import in ``harness/`` counts -- top-level, inside functions, under ``TYPE_CHECKING``
and ``importlib.import_module("harness...")`` with a literal name -- because a cycle hidden in
a function is still a cycle: it only moves the failure from import time to the first call.

Layers, lowest first (a module may import its own layer and the ones below, never above)::

    ground     errors status naming fsio imageio registry validate project threads _builtin
    measuring  slices and metrics (the hot path)
    comparing  paired, distribution and tolerance checks of measurements
    records    report.schema: report.json's data model, written by run/, read by report/ and plugin/
    declare    suite/ (suites, vectors, baselines), stages/, models/
    checks     checks that are not slice-vs-baseline comparisons (expectations, cross, anchors)
    run        run/: runner, executors, workers, run folder, cache, identity, case execution
    report     report/: views of a run
    entry      cli/, plugin/, pytest_plugin
    api        harness/__init__.py (the lazy public facade: nothing inside harness imports it)

``ALLOWED`` lists what still breaks a rule in files that other work owned while this test was
written, each with the rule it breaks; a new violation fails, and so does an entry that no
longer applies (remove it).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 400

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ground", ("harness.errors", "harness.status", "harness.naming", "harness.fsio", "harness.imageio",
                "harness.registry", "harness.validate", "harness.project", "harness.threads", "harness._builtin")),
    ("measuring", ("harness.measuring",)),
    ("comparing", ("harness.comparing",)),
    ("records", ("harness.report.schema", "harness.report.formats", "harness.report.format_v1",
                 "harness.report.format_v2", "harness.report.model", "harness.report.check_parts",
                 "harness.report.checks_table", "harness.report.measure_file")),
    ("declare", ("harness.suite", "harness.stages", "harness.models")),
    ("checks", ("harness.checks",)),
    ("run", ("harness.run",)),
    ("report", ("harness.report",)),
    ("entry", ("harness.cli", "harness.plugin", "harness.pytest_plugin")),
    ("api", ("harness",)),
)

# (rule, subject): why it is still here and how phase 2 removes it.
ALLOWED: dict[tuple[str, str], str] = {
}


# ------------------------------------------------------------------------------ the source
@lru_cache(maxsize=1)
def modules() -> dict[str, Path]:
    """Dotted name → file of every module under ``harness/`` (a package by its ``__init__``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


@lru_cache(maxsize=None)
def tree(name: str) -> ast.Module:
    return ast.parse(modules()[name].read_text(), filename=str(modules()[name]))


def _resolve(name: str) -> str | None:
    """The module that ``name`` (a module, or a name inside one) lives in."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def imports(name: str) -> dict[str, int]:
    """The harness modules ``name`` imports (anywhere in it), each with the first line doing so."""
    out: dict[str, int] = {}
    is_pkg = modules()[name].name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]

    def add(target: str | None, line: int) -> None:
        if target and target != name and target.startswith("harness"):
            out.setdefault(target, line)

    for node in ast.walk(tree(name)):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(_resolve(a.name), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            if not base.startswith("harness"):
                continue
            for a in node.names:  # `from pkg import submodule` imports the submodule (and pkg)
                full = f"{base}.{a.name}"
                add(full if full in modules() else _resolve(base), node.lineno)
                if full in modules() and not name.startswith(base + "."):
                    add(_resolve(base), node.lineno)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            add(_resolve(node.args[0].value), node.lineno)
    return out


def layer_of(name: str) -> int:
    """Index in LAYERS of the longest prefix naming ``name``'s layer."""
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best


def graph() -> dict[str, dict[str, int]]:
    return {m: imports(m) for m in modules()}


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in g:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


# ------------------------------------------------------------------------------ the violations
def violations() -> dict[tuple[str, str], str]:
    """(rule, subject) → what: every place the house rules are broken today."""
    g = graph()
    out: dict[tuple[str, str], str] = {}
    for comp in cycles(g):
        out[("cycle", " <-> ".join(comp))] = "modules that import each other (through function-level imports too)"
    for m, targets in g.items():
        for t, line in targets.items():
            if layer_of(t) > layer_of(m):
                out[("layer", f"{m} -> {t}")] = (f"{modules()[m].relative_to(ROOT.parent)}:{line}: "
                                                 f"{LAYERS[layer_of(m)][0]} imports {LAYERS[layer_of(t)][0]}")
    for m, path in modules().items():
        n = len(path.read_text().splitlines())
        if n > MAX_MODULE_LINES:
            out[("module-lines", m)] = f"{n} lines (max {MAX_MODULE_LINES})"
        for node in ast.walk(tree(m)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out[("function-lines", f"{m}.{node.name}")] = (f"{path.relative_to(ROOT.parent)}:{node.lineno}: "
                                                                   f"{n} lines (max {MAX_FUNCTION_LINES})")
    return out


def test_every_module_has_a_layer():
    assert [m for m in modules() if layer_of(m) is None] == []


def test_no_new_violations():
    new = {k: v for k, v in violations().items() if k not in ALLOWED}
    assert not new, "house rules broken:\n" + "\n".join(f"  {r:14} {s}: {w}" for (r, s), w in sorted(new.items()))


def test_allow_list_is_current():
    stale = sorted(k for k in ALLOWED if k not in violations())
    assert not stale, f"no longer broken, remove from ALLOWED: {stale}"


def test_the_plugin_is_layered():
    """Inside the plugin: common at the bottom; check, items and runs each on common only (items
    and runs reach the session through common's Session protocol); session on top of them; the
    hooks (pytest_plugin) on session and check."""
    def plugin_imports(name: str) -> list[str]:
        return sorted(t for t in imports(name) if t.startswith(("harness.plugin", "harness.pytest_plugin")))

    assert plugin_imports("harness.plugin.common") == []
    for name in ("check", "items", "runs"):
        assert plugin_imports(f"harness.plugin.{name}") == ["harness.plugin.common"], name
    assert plugin_imports("harness.plugin.session") == [f"harness.plugin.{m}" for m in ("check", "common", "items", "runs")]
    assert plugin_imports("harness.pytest_plugin") == ["harness.plugin.check", "harness.plugin.session"]


# ------------------------------------------------------------------------------ the checker itself
def test_cycle_finder_on_a_known_graph():
    g = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}, "e": {"e": 1}}
    assert cycles(g) == [["a", "b", "c"]]


def test_function_level_and_type_checking_imports_count(tmp_path):
    src = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness.run.runner import run_suite\n"
           "def f():\n    from harness.cli.app import main\n    import importlib\n"
           "    importlib.import_module('harness.report.html')\n")
    name = "harness.measuring.driver"
    tree.cache_clear()
    original = modules()[name]
    try:
        fake = tmp_path / "driver.py"
        fake.write_text(src)
        modules()[name] = fake
        assert sorted(imports(name)) == ["harness.cli.app", "harness.report.html", "harness.run.runner"]
        assert all(layer_of(t) > layer_of(name) for t in imports(name))  # each one a layer violation
    finally:
        modules()[name] = original
        tree.cache_clear()


@pytest.mark.parametrize("name, layer", [("harness.report.schema", "records"), ("harness.report.html", "report"),
                                         ("harness.run.case", "run"), ("harness", "api"),
                                         ("harness.measuring.metrics.noise", "measuring")])
def test_layer_of(name, layer):
    assert LAYERS[layer_of(name)][0] == layer
