"""Keep huggingface_hub / transformers / diffusers off the network: nothing may download at run time."""

from __future__ import annotations

import os

__all__ = ["OFFLINE_VARS", "force_offline"]

OFFLINE_VARS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "DISABLE_TELEMETRY": "1"}


def force_offline() -> None:
    """Set the offline switches; call before importing diffusers or transformers.

    huggingface_hub reads ``HF_HUB_OFFLINE`` once, at import; if it was imported
    earlier without it, its constant is patched too so later calls stay offline.
    """
    for k, v in OFFLINE_VARS.items():
        os.environ[k] = v
    # transformers warns at import that its image processors want torchvision; harness never
    # uses them (text encoder and tokenizer only), so its warnings would only be noise on stderr
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import sys

    c = sys.modules.get("huggingface_hub.constants")
    if c is not None and hasattr(c, "HF_HUB_OFFLINE"):
        c.HF_HUB_OFFLINE = True
