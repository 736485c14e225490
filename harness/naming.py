"""Names defined once: a case's id and its file-system slug."""

from __future__ import annotations

__all__ = ["case_id", "case_slug", "group_id"]


def case_id(vector: str, pipeline: str, seed: int | str) -> str:
    """``vector/pipeline/sSEED``: the id in reports, baselines paths, ``-k`` and pytest node ids."""
    return f"{vector}/{pipeline}/s{seed}"


def group_id(vector: str, pipeline: str) -> str:
    """The id of a distribution group: all seeds of one vector through one pipeline."""
    return f"{vector}/{pipeline}/seeds"


def case_slug(case_id: str) -> str:
    """A case id as one file or folder name (``cases/<slug>.json``, ``artifacts/<slug>/``)."""
    return case_id.replace("/", "__")
