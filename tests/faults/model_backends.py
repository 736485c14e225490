"""A stage backend with "weights", for showing where models load (``faults.model_backends:weighted``).

Its weights load once per process, through a process-wide cache, as the real model loaders'
(``lru_cache`` in harness.stages.generate / detect / sr, harness.models.diffusers_loading) do;
each load appends the process id to ``FOLDER/loads``, each case to ``FOLDER/cases``.  So a run on
long-lived workers shows one load per worker however many cases it ran.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def _weights(folder: str) -> np.uint8:
    with open(os.path.join(folder, "loads"), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    return np.uint8(1)


def weighted(image, ctx, folder=""):
    """Flips one bit by its "weights" (a deterministic denoise that did something)."""
    w = _weights(folder)
    with open(os.path.join(folder, "cases"), "a") as fh:
        fh.write(f"{ctx.seed} {os.getpid()}\n")
    out = image.copy()
    out[0, 0, 0] ^= w
    return out
