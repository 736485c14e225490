"""How a baseline document is spelled on disk: the reviewable layout (schema 2), and reading both.

A re-bake is reviewed as a ``git diff``, so the file is indented JSON with sorted keys where a
changed number sits on a line that names what it is::

    {
     "approvals": [
      {"at":"2026-01-05T10:12:00Z","by":"Ann <ann@x.org>","git_sha":"…","reason":"…","run":"…"}
     ],
     "case": "microprint_dilation/classic/s1",
     …
     "measurement": {
      "columns": ["value","std","bias"],
      "meta": {
       "height": 256,
       …
      },
      "metrics": {
       "band_power": {
        "band=low ch=Y": [812.3456,0.0123,0.0021],
        "band=mid region=ring ch=Y": [95.1,0.004,0.001],
        …

Metrics are sorted by name; slices keep the order the measurement gives them (the stable order
of :func:`harness.measuring.slices.slice_name`'s callers), so the same measurement is the same
bytes.  A calibrated ``spread`` is ``{metric: {slice: std}}``, one slice per line too.

:func:`canonical` reads either layout into the in-memory form every reader uses (the schema 1
form: ``measurement`` as :meth:`~harness.measuring.result.Measurement.to_dict` makes it,
``spread`` as ``{metric: [std per slice]}``); :func:`dump` writes that form as schema 2.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["COLUMNS", "dump", "canonical", "check"]

COLUMNS = ("value", "std", "bias")  # a slice's row in the metrics table

# How deep each top-level key is spread over lines (0: one line); deeper levels are one line each.
_DEPTH = {"approvals": 1, "environment": 2, "images": 1, "pipeline": 1, "stages": 1, "selfcheck": 1,
          "accepted_failing": 1}
_INDENT = " "  # one space per level, as MANIFEST.json: a smoke baseline is ~300 KB against 257 KB on one line


def _one_line(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def _block(items: list[tuple[str | None, str]], open_: str, close: str, level: int) -> str:
    """``items`` (key or None, already spelled value) one per line at ``level``, in brackets."""
    if not items:
        return open_ + close
    pad = _INDENT * (level + 1)
    lines = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {v}" if k is not None else f"{pad}{v}" for k, v in items]
    return open_ + "\n" + ",\n".join(lines) + "\n" + _INDENT * level + close


def _spread(value: Any, depth: int, level: int) -> str:
    """``value`` with its first ``depth`` levels of tables and lists one entry per line, keys sorted."""
    if depth <= 0:
        return _one_line(value)
    if isinstance(value, dict):
        return _block([(str(k), _spread(value[k], depth - 1, level + 1)) for k in sorted(value)], "{", "}", level)
    if isinstance(value, list):
        return _block([(None, _spread(v, depth - 1, level + 1)) for v in value], "[", "]", level)
    return _one_line(value)


def _rows(metric: str, slices: list[str], *columns: list[Any]) -> dict[str, Any]:
    """``{slice: row}`` of one metric; a slice named twice cannot be a table key (a measuring bug)."""
    if len(set(slices)) != len(slices):
        dup = next(s for s in slices if slices.count(s) > 1)
        raise ValueError(f"metric {metric!r}: slice {dup!r} appears twice; a baseline table needs unique slices")
    if any(len(c) != len(slices) for c in columns):
        raise ValueError(f"metric {metric!r}: {len(slices)} slices but columns of {[len(c) for c in columns]} entries")
    if len(columns) == 1:
        return dict(zip(slices, columns[0]))
    return {s: list(row) for s, row in zip(slices, zip(*columns))}


def check(doc: dict[str, Any]) -> None:
    """Raise ValueError when an in-memory document cannot be written as a table (a slice named
    twice in a metric, columns of other lengths), before anything is written."""
    m = doc.get("measurement")
    if isinstance(m, dict) and isinstance(m.get("metrics"), dict):
        for name, d in m["metrics"].items():
            _rows(name, list(d["slices"]), d["values"], d["std"], d["bias"])


def _table(table: dict[str, dict[str, Any]], level: int) -> str:
    """``{metric: {slice: row}}``: metrics sorted, one slice per line in measured order."""
    items = []
    for m in sorted(table):
        rows = [(s, _one_line(r)) for s, r in table[m].items()]
        items.append((m, _block(rows, "{", "}", level + 1)))
    return _block(items, "{", "}", level)


def dump(doc: dict[str, Any]) -> str:
    """The schema 2 text of a document in the in-memory form (see the module doc), whatever schema it was read from."""
    doc = {**doc, "schema_version": 2}
    items = []
    for key in sorted(doc):
        value = doc[key]
        if key == "measurement" and isinstance(value, dict) and isinstance(value.get("metrics"), dict):
            metrics = {m: _rows(m, d["slices"], d["values"], d["std"], d["bias"])
                       for m, d in value["metrics"].items()}
            inner = [("columns", _one_line(list(COLUMNS))), ("meta", _spread(value.get("meta") or {}, 1, 2)),
                     ("metrics", _table(metrics, 2))]
            items.append((key, _block(inner, "{", "}", 1)))
        elif key == "spread" and isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
            slices = {m: d["slices"] for m, d in doc["measurement"]["metrics"].items()}
            items.append((key, _table({m: _rows(m, slices[m], v) for m, v in value.items()}, 1)))
        else:
            items.append((key, _spread(value, _DEPTH.get(key, 1), 1)))
    return _block(items, "{", "}", 0) + "\n"


def _is_table(doc: dict[str, Any]) -> bool:
    """Whether ``doc``'s measurement is in the schema 2 table form (not the in-memory form)."""
    m = doc.get("measurement")
    return isinstance(m, dict) and "columns" in m


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document (schema 1 or 2) in the in-memory form; raises ValueError, KeyError or
    TypeError when it is malformed.  A document already in that form (schema 1, or read before)
    is returned as it is."""
    if doc.get("schema_version") == 2 and not isinstance(doc.get("measurement"), dict):
        raise ValueError("measurement is not a table")
    if not _is_table(doc):
        return doc
    out = dict(doc)
    m = doc["measurement"]
    if list(m.get("columns") or ()) != list(COLUMNS):
        raise ValueError(f"measurement.columns {m.get('columns')!r}, expected {list(COLUMNS)}")
    metrics = {}
    for name, rows in m["metrics"].items():
        if not isinstance(rows, dict) or any(not isinstance(r, list) or len(r) != 3 for r in rows.values()):
            raise ValueError(f"measurement.metrics.{name}: expected {{slice: [value, std, bias]}}")
        metrics[name] = {"slices": list(rows), "values": [r[0] for r in rows.values()],
                         "std": [r[1] for r in rows.values()], "bias": [r[2] for r in rows.values()]}
    out["measurement"] = {"meta": dict(m.get("meta") or {}), "metrics": metrics}
    if isinstance(doc.get("spread"), dict) and any(isinstance(v, dict) for v in doc["spread"].values()):
        spread = {}
        for name, by_slice in doc["spread"].items():
            slices = metrics.get(name, {}).get("slices")
            if slices is None or not isinstance(by_slice, dict) or set(by_slice) != set(slices):
                raise ValueError(f"spread.{name} does not match the measurement's slices")
            spread[name] = [by_slice[s] for s in slices]
        out["spread"] = spread
    return out
