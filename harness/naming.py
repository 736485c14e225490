"""Names defined once: a case's id and its file-system slug."""

from __future__ import annotations

__all__ = ["case_id", "case_slug"]


def case_id(vector: str, pipeline: str, seed: int | str) -> str:
    """``vector/pipeline/sSEED``: the id in reports, baselines paths, ``-k`` and pytest node ids."""
    return f"{vector}/{pipeline}/s{seed}"


def case_slug(case_id: str) -> str:
    """A case id as one file or folder name (``cases/<slug>.json``, ``artifacts/<slug>/``)."""
    return case_id.replace("/", "__")
