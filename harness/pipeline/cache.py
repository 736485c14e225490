"""The stage-output cache: outputs by content hash, in memory and (optionally) on disk.

A key hashes everything that goes into a stage call (the stage, its backend config,
the seed, the input image and masks).  A torn or unreadable entry is recomputed, never
trusted; a full disk stops disk caching with one warning instead of failing cases.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StageCache", "content_hash"]


def content_hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str((p.shape, p.dtype.str)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        elif p is None:
            h.update(b"\0none")
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


class StageCache:
    """Stage outputs by content hash: in memory, and on disk when ``directory`` is set."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory else None
        self._mem: dict[str, tuple[np.ndarray | None, np.ndarray | None, dict]] = {}

    def get(self, key: str):
        if key in self._mem:
            return self._mem[key]
        if self.directory is not None:
            p = self.directory / f"{key}.npz"
            if p.exists():
                try:
                    with np.load(p, allow_pickle=False) as z:
                        img = z["image"] if "image" in z.files else None
                        mask = z["mask"] if "mask" in z.files else None
                        info = json.loads(str(z["info"]))
                    self._mem[key] = (img, mask, info)
                    return self._mem[key]
                except (OSError, ValueError, KeyError):
                    p.unlink(missing_ok=True)  # a torn cache entry is recomputed, never trusted
        return None

    def put(self, key: str, image: np.ndarray | None, mask: np.ndarray | None, info: dict) -> None:
        self._mem[key] = (image, mask, info)
        if self.directory is None:
            return
        import io

        from harness.fsio import atomic_write_bytes

        arrays = {"info": np.array(json.dumps(info, default=str))}
        if image is not None:
            arrays["image"] = image
        if mask is not None:
            arrays["mask"] = mask
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        try:
            atomic_write_bytes(self.directory / f"{key}.npz", buf.getvalue())
        except OSError as exc:  # a full disk must not fail the case: warn once, stop caching to disk
            print(f"harness: warning: stage cache {self.directory} not written ({exc}); continuing without it",
                  file=sys.stderr)
            self.directory = None
