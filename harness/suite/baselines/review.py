"""Which stored baselines a bake rewrites: only a case that changed beyond tolerance, or one asked for.

A bake measures every case it selects, but values move a little from run to run (another
machine's rounding, a dependency's patch release).  Rewriting a passing case's baseline then
only churns the file and its git history, and silently moves the reference a later regression
is measured against.  So a case whose stored baseline exists is rewritten only when

* ``harness run`` would judge it different: in paired mode, a slice check fails or errors under
  the suite's compare config (:func:`harness.comparing.engine.compare_paired`, the candidate's
  noise floored by the baseline's calibrated spread, as :func:`harness.run.judge.judge_case`
  does); in distribution mode, its group's distribution check fails (power checks aside: they
  say what the seed count can see, not what changed);
* what the case *is* changed: its pipeline config, whether it is calibrated, the failing
  expectations it was accepted with; or it had no reference images and now has them; or
* it was asked for: ``--force``, or ``-k`` naming the case (``vector/pipeline/s1``) or its
  group (``vector/pipeline``) as a term.

Everything else stays as it is and is reported ``unchanged (within tolerance)`` with how
close it came.  A case whose file does not load (tampered, not in the manifest) is always
replaced, as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from harness.comparing.checks import Check
from harness.errors import BaselineError
from harness.measuring.result import Measurement, floor_std

__all__ = ["Verdict", "review", "named_cases", "config_changes", "describe_change", "WITHIN"]

WITHIN = "within tolerance"  # the detail of a case kept as it is (its line says "unchanged (within tolerance)")


@dataclass(frozen=True)
class Verdict:
    """Whether to rewrite one existing baseline, and why, for the file whose sha256 was judged
    (``against``; None: rewrite whatever is there)."""

    rewrite: bool
    why: str
    against: str | None = None


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


def named_cases(k_expr: str | None, case_ids: Iterable[str]) -> set[str]:
    """The case ids that ``-k`` names as a term: the whole id or its ``vector/pipeline`` group
    (a bare vector or a substring selects cases, it does not name them)."""
    if not k_expr:
        return set()
    terms = {t.lower() for t in _TOKEN.findall(k_expr) if t not in ("and", "or", "not", "(", ")")}
    return {c for c in case_ids if c.lower() in terms or c.lower().rsplit("/", 1)[0] in terms}


def config_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """``stage.param old → new`` for every pipeline parameter that differs (a stage or a
    parameter present on one side only reads ``None`` on the other)."""
    old, new = old or {}, new or {}
    out = []
    for stage in sorted(set(old) | set(new)):
        a, b = old.get(stage) or {}, new.get(stage) or {}
        if not isinstance(a, dict) or not isinstance(b, dict):
            a, b = {"(stage)": a}, {"(stage)": b}
        out += [f"{stage}.{k} {a.get(k)} → {b.get(k)}" for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
    return out


def _record_changes(old, new_doc: dict[str, Any]) -> str:
    """What the case is, changed: the pipeline config, calibration, accepted failing checks ("" when none)."""
    changes = config_changes(old.pipeline, new_doc.get("pipeline"))
    if changes:
        return "pipeline changed: " + ", ".join(changes)
    if bool(old.spread) != bool(new_doc.get("spread")):
        return "calibrated now" if new_doc.get("spread") else "no longer calibrated"
    if (old.accepted_failing or None) != (new_doc.get("accepted_failing") or None):
        return "the failing expectations it is accepted with changed"
    if not old.images and new_doc.get("images"):  # a run can now say which stage diverged from them
        return "reference images added"
    return ""


def _judged(checks: list[Check]) -> tuple[bool, str]:
    """``(beyond tolerance, in words)`` of one comparison's checks."""
    moved = [c for c in checks if c.status in ("fail", "error") and c.metric != "power"]
    worst = max((c for c in checks if c.metric != "power"), key=lambda c: c.severity, default=None)
    where = ""
    if worst is not None and worst.value is not None and worst.baseline is not None:
        where = f"{worst.metric} [{worst.slice}] {worst.baseline:.4g} -> {worst.value:.4g}"
    if moved:
        return True, f"{len(moved)} slice(s) beyond tolerance" + (f", worst {where}" if where else "")
    if worst is None or worst.severity <= 0:
        return False, f"{WITHIN}: no slice moved"
    return False, f"{WITHIN}: largest move {where}, {worst.severity:.2f} × tolerance"


def review(store, entries: list[tuple[str, dict[str, Any]]], config, *, distribution=None,
           named: Iterable[str] = (), force: bool = False) -> dict[str, Verdict]:
    """A :class:`Verdict` for every entry whose case has a stored baseline (``{}`` for new cases).

    ``config``: the suite's compare config; ``distribution``: its ``[distribution]`` table when the
    suite is in distribution mode (groups judged whole), else None (paired)."""
    from harness.suite.baselines.manifest import file_sha

    named = set(named)
    out: dict[str, Verdict] = {}
    pending: list[tuple[str, dict[str, Any], Any, str]] = []  # judged by values: (id, doc, baseline, sha)
    for cid, doc in entries:
        sha = file_sha(store.path_for(cid))
        if sha is None:
            continue
        if force or cid in named:
            out[cid] = Verdict(True, "--force" if force else "named by -k")
            continue
        try:
            old = store.load(cid)
        except BaselineError as exc:
            out[cid] = Verdict(True, f"replaces a file that does not load ({exc})")
            continue
        why = _record_changes(old, doc)
        if why:
            out[cid] = Verdict(True, why, sha)
        else:
            pending.append((cid, doc, old, sha))
    if distribution is None:
        for cid, doc, old, sha in pending:
            cand = floor_std(Measurement.from_dict(doc["measurement"]), old.spread)
            out[cid] = Verdict(*_paired(old.measurement, cand, config), sha)
    else:
        out.update(_groups(store, pending, config, distribution))
    return out


def _paired(old: Measurement, new: Measurement, config) -> tuple[bool, str]:
    from harness.comparing.engine import compare_paired

    try:
        return _judged(compare_paired(old, new, config))
    except ValueError as exc:  # not comparable (another size, tile grid): a different case
        return True, str(exc)


def _groups(store, pending: list, config, distribution) -> dict[str, Verdict]:
    """Distribution mode: each group's new seeds against all its stored seeds, as a run judges them."""
    from harness.comparing.distribution import compare_distribution

    groups: dict[str, list] = {}
    for item in pending:
        groups.setdefault(item[0].rsplit("/", 1)[0], []).append(item)
    out = {}
    for gid, items in groups.items():
        vector, pipeline = gid.split("/")
        try:
            stored = [b.measurement for c in store.group_case_ids(vector, pipeline) if (b := store.load(c))]
            new = [Measurement.from_dict(doc["measurement"]) for _, doc, _, _ in items]
            beyond, why = _judged(compare_distribution(stored, new, config, distribution))
        except (BaselineError, ValueError) as exc:  # < 2 stored seeds, another size: judge no further
            beyond, why = True, f"group {gid} not comparable ({exc})"
        out.update({cid: Verdict(beyond, why, sha) for cid, _, _, sha in items})
    return out


def describe_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """How the new document of a case differs from the one it replaces (both in-memory form), in
    one line, judged with the default compare config (a description, not the decision)."""
    if old is None:
        return "replaces an unreadable file"
    try:
        if old.get("measurement") == new["measurement"] and old.get("stages") == new["stages"]:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)
                          and k not in ("approvals", "schema_version"))
            env_old, env_new = old.get("environment") or {}, new.get("environment") or {}
            fields = sorted(k for k in set(env_old) | set(env_new) if env_old.get(k) != env_new.get(k))
            return "same values; only the record changed: " + (", ".join(
                f"environment ({', '.join(fields)})" if k == "environment" and fields else k for k in keys)
                or "its layout")
        a, b = Measurement.from_dict(old["measurement"]), Measurement.from_dict(new["measurement"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return "replaces an unreadable file"
    beyond, why = _paired(a, b, None)
    return why if beyond else "values moved " + why
