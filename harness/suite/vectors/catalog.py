"""Finding vectors on disk: every ``*.toml`` under the vector folders (except ``suites/``), by id;
an id in an earlier folder (the project's) shadows the same id in a later one (the built-ins)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from harness.errors import ConfigError
from harness.suite.vectors.schema import Vector, load_vector

__all__ = ["discover", "discover_shadowing", "shadowing_note", "get_vector", "SUITES_SUBDIR"]

SUITES_SUBDIR = "suites"


def _vector_files(root: Path) -> list[Path]:
    out = []
    for f in sorted(root.rglob("*.toml")):
        rel = f.relative_to(root).parts
        if rel[0] == SUITES_SUBDIR or any(part.startswith(".") for part in rel):
            continue
        out.append(f)
    return out


def discover(roots: str | Path | Sequence[str | Path]) -> dict[str, Vector]:
    """Every vector under ``roots`` (one folder or several, searched in order; sub-folders too,
    except ``suites/``), sorted by id; see :func:`discover_shadowing` for ids found in two roots."""
    return discover_shadowing(roots)[0]


def discover_shadowing(roots: str | Path | Sequence[str | Path]) -> tuple[dict[str, Vector], dict[str, Path]]:
    """:func:`discover`, plus ``{id: the file it shadows}`` for every id that an earlier root defines
    again (a project's own vector over a built-in one of the same id: the project's wins).

    Shadowing is what lets a project redefine a built-in vector, and lets one checkout of
    harness's own repository run with harness installed from another (its vectors are
    project vectors *and*, one level down, built-ins).  An id defined twice within one
    root is still an error naming both files: there, neither can win.  The same file
    reached through two roots (the repository as its own installed package) shadows nothing."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    found: dict[str, Vector] = {}
    shadowed: dict[str, Path] = {}
    for root in roots:
        r = Path(root)
        if not r.is_dir():
            raise ConfigError(f"{r}: vectors directory not found")
        here: dict[str, Vector] = {}
        for f in _vector_files(r):
            v = load_vector(f)
            if v.id in here:
                raise ConfigError(f"{f}: id: duplicate vector id {v.id!r} (also in {here[v.id].path}); "
                                  f"ids must be unique within a vector folder")
            here[v.id] = v
        for vid, v in here.items():
            if vid not in found:
                found[vid] = v
            elif found[vid].path.resolve() != v.path.resolve() and vid not in shadowed:
                shadowed[vid] = v.path
    return {vid: found[vid] for vid in sorted(found)}, {vid: shadowed[vid] for vid in sorted(shadowed)}


def shadowing_note(vectors: dict[str, Vector], shadowed: dict[str, Path]) -> str | None:
    """One sentence naming each vector that shadows another of the same id (None when none does)."""
    if not shadowed:
        return None
    pairs = ", ".join(f"{vid} ({vectors[vid].path} over {shadowed[vid]})" for vid in shadowed)
    return f"project vectors shadow built-in ones of the same id, the project's being used: {pairs}"


def get_vector(vector_id: str, roots: str | Path | Sequence[str | Path]) -> Vector:
    known = discover(roots)
    if vector_id not in known:
        raise ConfigError(f"unknown vector {vector_id!r}; known: {', '.join(known) or '(none)'}")
    return known[vector_id]
