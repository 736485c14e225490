"""One schema per report.json ``schema_version``, used by the writer and by every reader.

Each version is a module of typed dicts (``format_v1``: every check in report.json;
``format_v2``: the deciding checks, the rest in ``checks.parquet``) defining ``Report`` (report.json) and ``CaseRecord``
(``cases/<slug>.json``), plus ``consistency(doc)`` / ``case_consistency(case)`` for what a
type cannot say.  :func:`problem` validates a document against them and returns the first
problem as one line ``<json path>: <what is wrong>`` (``cases[3].checks[7].status: 'FAILED'
is not one of pass, fail, error, skip``), or None.

Why pydantic typed dicts and not a JSON Schema file validated by ``jsonschema``: a version-1
report holds every check (about 1,300 per case at 256 px, so a 100-case nightly holds
130,000; version 2 holds only the deciding ones, but version-1 reports are still read), and
``jsonschema`` took 7.3 s to validate such a report here, pydantic's compiled
validator 0.26 s (``json.loads`` of it: 0.3 s); it also reports the failing field's path
directly.  The JSON Schema is still shipped for other tools: ``report.v<N>.schema.json`` and
``case-record.v<N>.schema.json`` beside this module, for every version, are generated from the same typed dicts
(``python -m harness.report.formats --write``; a test fails when they are stale).
"""

from __future__ import annotations

import importlib
from importlib import resources
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["VERSIONS", "CURRENT", "KINDS", "problem", "version_of", "json_schema", "schema_path"]

#: schema_version -> the module that defines it.
VERSIONS = {1: "harness.report.format_v1", 2: "harness.report.format_v2"}
#: The version the writer writes.
CURRENT = 2
#: What a schema describes -> its typed dict in a version module.
KINDS = {"report": "Report", "case-record": "CaseRecord"}


@lru_cache(maxsize=None)
def _adapter(version: int, kind: str):
    from pydantic import TypeAdapter

    return TypeAdapter(getattr(importlib.import_module(VERSIONS[version]), KINDS[kind]))


def version_of(doc: Any) -> int | None:
    """The ``schema_version`` of a report document when it is one this harness reads, else None."""
    v = doc.get("schema_version") if isinstance(doc, dict) else None
    return v if type(v) is int and v in VERSIONS else None


def json_path(loc: tuple[Any, ...]) -> str:
    """``("cases", 3, "checks", 7, "status")`` -> ``cases[3].checks[7].status``; ``(root)`` for ()."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: the message stays one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _describe(err: dict[str, Any]) -> str:
    """One phrase for a pydantic error: what is wrong, and the value (shortened)."""
    kind, given = err["type"], err.get("input")
    shown = _short(given)
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        allowed = str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"{shown} is not one of {allowed}"
    if kind == "string_pattern_mismatch":
        if err["loc"][-1] == "id" or err["loc"][0] == "planned":
            return f"{shown} is not a case id (expected 'vector/pipeline/sSEED')"
        return f"{shown} is not a valid name (letters, digits, '_', '.', '-'; not starting with '.' or '-')"
    text = err["msg"][0].lower() + err["msg"][1:]
    return text if isinstance(given, (dict, list)) else f"{text}, got {shown}"


def problem(doc: Any, kind: str = "report", version: int = CURRENT) -> str | None:
    """The first way ``doc`` breaks schema ``version``'s ``kind``, as ``<json path>: <problem>``; None if none."""
    from pydantic import ValidationError

    try:
        _adapter(version, kind).validate_python(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        return f"{json_path(err['loc'])}: {_describe(err)}"
    mod = importlib.import_module(VERSIONS[version])
    found = mod.consistency(doc) if kind == "report" else mod.case_consistency(doc["case"], "case.")
    first = next(iter(found), None)
    return f"{first[0]}: {first[1]}" if first else None


def schema_path(kind: str, version: int = CURRENT) -> Path:
    """The shipped JSON Schema file of ``kind`` (``report``, ``case-record``) for ``version``."""
    # package data, found as every other shipped file is (importlib.resources), never from __file__
    return Path(str(resources.files("harness.report") / f"{kind}.v{version}.schema.json"))


def json_schema(kind: str, version: int = CURRENT) -> str:
    """The JSON Schema (draft 2020-12) of ``kind`` for ``version``, as the shipped file holds it."""
    schema = _adapter(version, kind).json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": f"https://harness.invalid/{kind}.v{version}.schema.json", **schema}
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """``--write``: regenerate the shipped schema files; else exit 1 if any is stale."""
    stale = []
    for version in VERSIONS:
        for kind in KINDS:
            path, text = schema_path(kind, version), json_schema(kind, version)
            if "--write" in argv:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path}")
            elif not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
    for path in stale:
        print(f"{path} is stale: run `python -m harness.report.formats --write`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
