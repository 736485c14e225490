"""Where a user's vectors, suites, baselines, reports and stage cache live: found once, at the edge.

A project is a folder whose ``harness.toml`` (top-level keys) or ``pyproject.toml``
(a ``[tool.harness]`` table) configures harness.  It is found the way pytest finds its
rootdir: from the working directory upward, the first folder holding either file wins
(``harness.toml`` before ``pyproject.toml`` in the same folder; a ``pyproject.toml``
without a ``[tool.harness]`` table does not count).  Every key is optional::

    [tool.harness]
    vectors    = "vectors"          # the project's test vectors (*.toml)
    suites     = "vectors/suites"   # the project's suites (*.toml)
    baselines  = "baselines"        # baselines/<suite>/..., written by `harness bake`
    reports    = "reports"          # reports/<run-id>/, written by `harness run`
    cache      = ".harness-cache"   # stage-output cache
    cache_max_mb = 2048             # its size bound: least recently used entries are evicted
    store      = ".harness-store"   # image store: every stage image once, by sha256 (runs and baselines)
    store_max_mb = 4096             # its size bound: least recently used objects go, never a baseline's
    pythonpath = ["."]              # folders importable by custom `module:attr` backends
    suite      = "smoke"            # the suite `harness run` runs without --suite
    tolerances = "tolerances.toml"  # default [[tolerances]] file of `harness compare`
    builtins   = true               # also offer the built-in vectors and suites
    history    = "history"          # nightly history: each `harness run` appends its checks (default: none)

Relative paths in the file are relative to the file's folder; paths on the command line
are relative to the working directory and override the file.  With no project, the
built-in vectors, suites and baselines (package data, read through
:mod:`importlib.resources`) are used, and outputs go under the working directory.
Nothing here, or anywhere in harness, computes a data path from the package's source tree.
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from harness.errors import ConfigError

__all__ = ["Project", "load_project", "find_config", "builtin_dir", "CONFIG_KEYS", "DEFAULTS"]

DEFAULTS: dict[str, Any] = {
    "vectors": "vectors",
    "suites": "vectors/suites",
    "baselines": "baselines",
    "reports": "reports",
    "cache": ".harness-cache",
    "cache_max_mb": 2048,
    "store": ".harness-store",
    "store_max_mb": 4096,
    "pythonpath": ["."],
    "suite": "smoke",
    "tolerances": None,
    "builtins": True,
    "history": None,
}
CONFIG_KEYS = tuple(DEFAULTS)
_PATH_KEYS = ("vectors", "suites", "baselines", "reports", "cache", "store")


def builtin_dir(kind: str) -> Path:
    """The folder of the built-in ``vectors`` (with ``suites/``) or ``baselines``."""
    if kind not in ("vectors", "baselines"):
        raise ValueError(f"unknown built-in data kind {kind!r}")
    # A plain directory in every supported install (wheel, editable); zip imports are not supported.
    return Path(str(resources.files(f"harness._builtin.{kind}")))


@dataclass(frozen=True)
class Project:
    """Every folder harness reads or writes, resolved once (see the module docstring)."""

    root: Path
    config_file: Path | None
    vectors: Path | None
    suites: Path | None
    baselines: Path
    reports: Path
    cache: Path
    pythonpath: tuple[Path, ...] = ()
    default_suite: str = "smoke"
    tolerances: Path | None = None
    builtins: bool = True
    cache_max_mb: int = 2048
    store: Path | None = None  # the image store (harness.run.store); None: `.harness-store` beside the cache
    store_max_mb: int = 4096
    history: Path | None = None  # the nightly history dataset (None: runs append nothing)
    overridden: tuple[str, ...] = field(default=(), compare=False)

    @property
    def found(self) -> bool:
        """True when a project file configured this; False for the built-in defaults."""
        return self.config_file is not None

    @property
    def store_root(self) -> Path:
        """The image store's folder: ``store``, or (a Project made without one) ``.harness-store`` beside the cache."""
        return self.store if self.store is not None else self.cache.parent / ".harness-store"

    @property
    def vector_roots(self) -> tuple[Path, ...]:
        """Folders searched for vectors: the project's first, then the built-ins (deduplicated)."""
        return _unique([self.vectors] + ([builtin_dir("vectors")] if self.builtins else []))

    @property
    def suite_dirs(self) -> tuple[Path, ...]:
        """Folders searched for suites by name: the project's first, then the built-ins."""
        return _unique([self.suites] + ([builtin_dir("vectors") / "suites"] if self.builtins else []))

    @property
    def baselines_are_builtin(self) -> bool:
        return _same(self.baselines, builtin_dir("baselines")) and not self.found

    def activate(self) -> None:
        """Make the project's custom backend modules importable (idempotent)."""
        for p in reversed(self.pythonpath):
            s = str(p)
            if s not in sys.path:
                sys.path.insert(0, s)

    def with_overrides(self, **paths: str | os.PathLike[str] | None) -> Project:
        """Command-line overrides (``vectors``, ``suites``, ``baselines``, ``reports``, ``cache``, ``store``,
        ``history``), relative to the working directory; ``None`` values are ignored."""
        given = {k: v for k, v in paths.items() if v is not None}
        bad = set(given) - set(_PATH_KEYS) - {"history"}
        if bad:
            raise ValueError(f"not a project folder: {sorted(bad)}")
        resolved = {k: Path(v).expanduser().resolve() for k, v in given.items()}
        if "vectors" in resolved and "suites" not in resolved and self.suites is not None \
                and self.vectors is not None and _inside(self.suites, self.vectors):
            resolved["suites"] = resolved["vectors"] / self.suites.relative_to(self.vectors)
        return replace(self, **resolved, overridden=tuple(sorted(set(self.overridden) | set(given))))

    def describe(self) -> str:
        src = str(self.config_file) if self.found else "no project file found: built-in vectors and suites"
        lines = [f"project: {src}"]
        for key in (*_PATH_KEYS, "history"):
            lines.append(f"  {key:10} {getattr(self, key) or '-'}")
        if self.builtins:
            lines.append(f"  {'built-ins':10} {builtin_dir('vectors')}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """What a report records of where its inputs came from."""
        return {"config_file": str(self.config_file) if self.config_file else None, "root": str(self.root),
                **{k: str(getattr(self, k)) if getattr(self, k) is not None else None
                   for k in (*_PATH_KEYS, "history")}}


def find_config(start: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The first ``harness.toml`` or ``pyproject.toml`` with ``[tool.harness]`` from ``start`` upward."""
    here = Path(start or os.getcwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        ht = folder / "harness.toml"
        if ht.is_file():
            return ht, _read(ht)
        pp = folder / "pyproject.toml"
        if pp.is_file():
            doc = _read(pp)
            tool = doc.get("tool", {})
            if isinstance(tool, dict) and "harness" in tool:
                table = tool["harness"]
                if not isinstance(table, dict):
                    raise ConfigError(f"{pp}: tool.harness: expected a table")
                return pp, table
    return None


def load_project(start: str | os.PathLike[str] | None = None, *,
                 config_file: str | os.PathLike[str] | None = None) -> Project:
    """Resolve the project for ``start`` (default: the working directory).

    ``config_file`` names a ``harness.toml``/``pyproject.toml`` (or its folder) directly,
    as ``--project`` does; it must configure harness.
    """
    if config_file is not None:
        given = Path(config_file).expanduser()
        if not given.exists():
            raise ConfigError(f"--project {config_file}: no such file or directory")
        found = find_config(given) if given.is_dir() else _explicit(given)
        if found is None or (given.is_dir() and found[0].parent != given.resolve()):
            raise ConfigError(f"--project {config_file}: no harness.toml or pyproject.toml with [tool.harness] there")
    else:
        found = find_config(start)
    if found is None:
        cwd = Path(start or os.getcwd()).resolve()
        return Project(root=cwd, config_file=None, vectors=None, suites=None, baselines=builtin_dir("baselines"),
                       reports=cwd / "reports", cache=cwd / ".harness-cache", store=cwd / ".harness-store")
    path, table = found
    return _from_table(path, table)


def _explicit(path: Path) -> tuple[Path, dict[str, Any]] | None:
    doc = _read(path)
    if path.name == "pyproject.toml":
        table = doc.get("tool", {}).get("harness") if isinstance(doc.get("tool"), dict) else None
        if table is None:
            return None
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tool.harness: expected a table")
        return path.resolve(), table
    return path.resolve(), doc


def _from_table(path: Path, table: Mapping[str, Any]) -> Project:
    where = f"{path}: " + ("tool.harness." if path.name == "pyproject.toml" else "")
    unknown = set(table) - set(CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"{where}{sorted(unknown)[0]}: unknown key; allowed: {', '.join(CONFIG_KEYS)}")
    cfg = {**DEFAULTS, **table}
    root = path.parent.resolve()
    paths: dict[str, Path] = {}
    for key in _PATH_KEYS:
        v = cfg[key]
        if not isinstance(v, str) or not v:
            raise ConfigError(f"{where}{key}: expected a folder path (a string), got {v!r}")
        paths[key] = (root / v).resolve()
    pp = cfg["pythonpath"]
    if isinstance(pp, str):
        pp = [pp]
    if not isinstance(pp, list) or not all(isinstance(p, str) for p in pp):
        raise ConfigError(f"{where}pythonpath: expected a list of folder paths, got {cfg['pythonpath']!r}")
    suite = cfg["suite"]
    if not isinstance(suite, str) or not suite:
        raise ConfigError(f"{where}suite: expected a suite name or path, got {suite!r}")
    tol = cfg["tolerances"]
    if tol is not None and (not isinstance(tol, str) or not tol):
        raise ConfigError(f"{where}tolerances: expected a file path, got {tol!r}")
    if not isinstance(cfg["builtins"], bool):
        raise ConfigError(f"{where}builtins: expected true or false, got {cfg['builtins']!r}")
    for key in ("cache_max_mb", "store_max_mb"):
        mb = cfg[key]
        if isinstance(mb, bool) or not isinstance(mb, int) or mb < 1:
            raise ConfigError(f"{where}{key}: expected a whole number of megabytes >= 1, got {mb!r}")
    hist = cfg["history"]
    if hist is not None and (not isinstance(hist, str) or not hist):
        raise ConfigError(f"{where}history: expected a folder path (a string), got {hist!r}")
    return Project(root=root, config_file=path.resolve(), **paths,
                   pythonpath=tuple((root / p).resolve() for p in pp), default_suite=suite,
                   tolerances=(root / tol).resolve() if tol else None, builtins=cfg["builtins"],
                   cache_max_mb=cfg["cache_max_mb"], store_max_mb=cfg["store_max_mb"],
                   history=(root / hist).resolve() if hist else None)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({' '.join(str(exc).split())})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _unique(paths: list[Path | None]) -> tuple[Path, ...]:
    out: list[Path] = []
    for p in paths:
        if p is not None and not any(_same(p, q) for q in out):
            out.append(p)
    return tuple(out)
