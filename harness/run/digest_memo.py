"""File digests kept across processes: a new ``harness run`` does not hash the same weights again.

:func:`harness.run.identity.file_digest` keeps each file's sha256 for the process by the file's
(device, inode, size, mtime, ctime) signature.  The driver's case memo
(:mod:`harness.run.case_memo`) saves those to ``<cache dir>/memo/digests.json`` and adopts them in
the next run: a digest is used only while its file's signature is still the one recorded with it
(git's rule for its index), so a file changed since is hashed again.  Racy files (modified within
:data:`~harness.run.identity.RACY_SECONDS`) are never kept in the first place.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from harness.run.identity import DIGESTS

__all__ = ["load_digests", "save_digests"]

_SAVED_CAP = 20_000  # file digests a saved memo keeps (the newest: this process's first)


def _memo_sum(entries: Any) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def load_digests(path: str | os.PathLike[str]) -> int:
    """Adopt the file digests :func:`save_digests` wrote to ``path`` (another process, an earlier
    run), so that a new process does not hash the same weights again; how many were adopted.

    Each is used only while the file's (device, inode, size, mtime, ctime) signature is the one
    recorded with it, exactly as this process's own: a file changed since is hashed again.  A
    missing, torn or garbled memo adopts nothing (its checksum is verified)."""
    try:
        doc = json.loads(Path(path).read_bytes())
        entries = doc["entries"]
        if doc.get("sha256") != _memo_sum(entries):
            return 0
        adopted = {str(p): (tuple(int(v) for v in sig), str(d)) for p, (sig, d) in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0
    for p, entry in adopted.items():
        DIGESTS.setdefault(p, entry)
    return len(adopted)


def save_digests(path: str | os.PathLike[str]) -> None:
    """Write this process's file digests (none of them racy: see :func:`file_digest`) to ``path``,
    atomically; an OSError propagates."""
    from harness.fsio import atomic_write_bytes

    items = list(DIGESTS.items())[-_SAVED_CAP:]
    entries = {p: [list(sig), d] for p, (sig, d) in items}
    atomic_write_bytes(path, json.dumps({"entries": entries, "sha256": _memo_sum(entries)}).encode())
