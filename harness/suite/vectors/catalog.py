"""Finding vectors on disk: every ``*.toml`` under the vector folders (except ``suites/``), by id."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from harness.errors import ConfigError
from harness.suite.vectors.schema import Vector, load_vector

__all__ = ["discover", "get_vector", "SUITES_SUBDIR"]

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
    except ``suites/``), sorted by id.  An id defined twice is an error naming both files."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    found: dict[str, Vector] = {}
    for root in roots:
        r = Path(root)
        if not r.is_dir():
            raise ConfigError(f"{r}: vectors directory not found")
        for f in _vector_files(r):
            v = load_vector(f)
            if v.id in found:
                if found[v.id].path.resolve() == f.resolve():
                    continue
                raise ConfigError(f"{f}: id: duplicate vector id {v.id!r} (also in {found[v.id].path}); "
                                  f"ids must be unique across the project and the built-in vectors")
            found[v.id] = v
    return {vid: found[vid] for vid in sorted(found)}


def get_vector(vector_id: str, roots: str | Path | Sequence[str | Path]) -> Vector:
    known = discover(roots)
    if vector_id not in known:
        raise ConfigError(f"unknown vector {vector_id!r}; known: {', '.join(known) or '(none)'}")
    return known[vector_id]
