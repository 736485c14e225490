"""Statuses and their order, defined once: ``error`` > ``fail`` > ``pass`` (``skip`` never gates).

A check, a case, a compared pair, a run: each has one of :data:`STATUSES`; whatever
aggregates them takes the worst with :func:`worst`, and the CLI maps it to an exit code
with :func:`exit_code`.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["STATUSES", "GATING", "rank", "worst", "exit_code"]

STATUSES = ("pass", "fail", "error", "skip")
GATING = ("fail", "error")  # statuses that make a run, a pytest item or a CI job fail
_RANK = {"skip": 0, "pass": 1, "fail": 2, "error": 3}


def rank(status: str) -> int:
    """Sort key: higher is worse."""
    try:
        return _RANK[status]
    except KeyError:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}") from None


def worst(statuses: Iterable[str]) -> str:
    """``error`` if any, else ``fail`` if any, else ``pass`` (skips and an empty input are ``pass``)."""
    top = "pass"
    for s in statuses:
        if rank(s) > rank(top):
            top = s
            if top == "error":
                break
    return top


def exit_code(status: str) -> int:
    """The CLI exit code of an overall status (contract): 0 pass, 1 fail or error."""
    return 1 if status in GATING else 0
