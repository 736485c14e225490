"""Which suite and which of its cases: ``--suite`` names, ``-k`` expressions and ``--seeds`` lists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from harness.errors import ConfigError

__all__ = ["find_suite", "match_k", "parse_seeds"]


def find_suite(name_or_path: str | Path, dirs: Sequence[Path]) -> Path:
    """A suite name (``smoke``) is ``<dir>/smoke.toml`` in the first of ``dirs`` that has it;
    a path (``*.toml`` or an existing file) is used as given."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise ConfigError(f"{p}: suite file not found")
        return p
    for d in dirs:
        candidate = d / f"{name_or_path}.toml"
        if candidate.is_file():
            return candidate
    names = sorted({q.stem for d in dirs if d.is_dir() for q in d.glob("*.toml")})
    where = ", ".join(str(d) for d in dirs) or "(no suite folders)"
    raise ConfigError(f"--suite {name_or_path!r}: no such suite in {where}; known: {', '.join(names) or '(none)'}")


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def match_k(expr: str, case_id: str) -> bool:
    """pytest-style ``-k``: substrings combined with ``and``, ``or``, ``not`` and parentheses."""
    tokens = _TOKEN.findall(expr)
    out = []
    for t in tokens:
        if t in ("and", "or", "not", "(", ")"):
            out.append(t)
        else:
            out.append(repr(t.lower() in case_id.lower()))
    try:
        return bool(eval(" ".join(out), {"__builtins__": {}}, {}))  # noqa: S307 - only True/False/and/or/not
    except SyntaxError:
        raise ConfigError(f"-k {expr!r}: not a valid expression (use words with and / or / not)") from None


def parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 1,2,3`` or ranges ``101-196`` (inclusive; mixable: ``1,5-8``) as a list
    (``None`` when not given); a ConfigError names the option."""
    if text is None:
        return None
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if dash else (int(part), int(part))
        except ValueError:
            raise ConfigError(f"--seeds {text!r}: expected comma-separated integers or ranges, e.g. 1,2,3 or "
                              f"101-116") from None
        if first > last:
            raise ConfigError(f"--seeds {text!r}: range {part!r} runs backwards")
        if last - first >= 100_000:
            raise ConfigError(f"--seeds {text!r}: range {part!r} has more than 100000 seeds")
        seeds += range(first, last + 1)
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {text!r}: expected integers >= 0")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: a seed is named twice")
    return seeds
