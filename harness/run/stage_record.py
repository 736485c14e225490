"""What a case records of each stage's code and weights, so that a baseline remembers them and
"what changed" can say ``generate.weights 3f2a9c1d04e6 → 8b7e55a0c912`` when a checkpoint is swapped
under the same name, or ``inpaint.code … → …`` when a backend's module changed.

The values are short digests (12 hex) of what the stage cache already keys on
(:func:`harness.run.identity.stage_identity`): the source of the modules defining the backend, and
every weights file or folder it declares or is given by path.  They go into the case's
``config["pipeline"][stage]`` beside the parameters, under :data:`IDENTITY_KEYS`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["IDENTITY_KEYS", "identity_params", "record_identity"]

#: the keys of a stage's recorded config that identify code and weights, not parameters
IDENTITY_KEYS = ("code", "weights")


def _short(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def identity_params(backend: Any) -> dict[str, str]:
    """``{"code": digest}`` of the backend's modules and, when it has any, ``{"weights": digest}``
    of its weights (a file that is missing digests as "missing", so it still differs)."""
    from harness.run.identity import stage_identity

    ident = stage_identity(backend)
    out = {"code": _short(ident["code"])}
    if ident["weights"]:
        out["weights"] = _short(ident["weights"])
    return out


def record_identity(config: dict[str, Any], stage: str, backend: Any) -> None:
    """Add ``backend``'s identity to ``config["pipeline"][stage]`` (the case's recorded config)."""
    pipeline = config.setdefault("pipeline", {})
    entry = pipeline.get(stage)
    if isinstance(entry, dict):
        pipeline[stage] = {**entry, **identity_params(backend)}
