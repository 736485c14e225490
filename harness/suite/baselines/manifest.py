"""The manifest of a suite's baseline folder, ``<suite>/MANIFEST.json``: the sha256 of every
recorded baseline file, and the check of the folder's files against it.

Format (``json.dumps(indent=1, sort_keys=True)``)::

    {"schema_version": 1, "suite": "<suite>", "files": {"<vector>/<pipeline>/s<seed>.json": "<sha256>"}}

While a bake writes, it also holds ``"pending": {rel: new sha256, or null for a removal}``,
the bake's intent (see :mod:`.bake`); a manifest without pending work has no ``"pending"``
key, byte for byte the format of schema 1.  Reading it never locks: the file is replaced
atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BaselineError
from harness.fsio import atomic_write_text, is_temp_name
from harness.suite.baselines.document import LOCK, MANIFEST, BakeChange, StoreCheck

__all__ = ["Manifest", "sha256", "file_sha"]

SCHEMA_VERSION = 1  # the manifest's own format (the documents' is document.SCHEMA_VERSION)


def sha256(data: bytes) -> str:
    """The hex sha256 a manifest records for a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def file_sha(p: Path) -> str | None:
    """:func:`sha256` of the file at ``p``; None when there is no file there."""
    try:
        return sha256(p.read_bytes())
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _dump_manifest(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


_PARSED: dict[str, Any] = {}  # the last manifest parsed: {"sig": its file's stat signature, "value": (files, pending)}


@dataclass(frozen=True)
class Manifest:
    """``folder/MANIFEST.json`` of the suite ``suite``: read, written, and checked against the folder."""

    folder: Path
    suite: str

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    def read(self) -> tuple[dict[str, str], dict[str, str | None]]:
        """``(files, pending)``: ``{rel: sha256}`` of the recorded files and ``{rel: sha256 or
        None}`` of an interrupted bake's intent; both empty when there is no manifest.
        Raises BaselineError (naming the file) when it is corrupt."""
        p = self.path
        try:
            st = p.stat()
        except (FileNotFoundError, NotADirectoryError):
            return {}, {}
        sig = (str(p), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if _PARSED.get("sig") == sig:  # a run reads it for every case: parsed once while the file is the same
            files, pending = _PARSED["value"]
            return dict(files), dict(pending)
        try:
            text = p.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return {}, {}
        files, pending = self._parse(p, text)
        # a file changed within the file system's timestamp tick could keep its signature: not kept while so fresh
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > 2_000_000_000:
            _PARSED.update(sig=sig, value=(files, pending))
        return dict(files), dict(pending)

    @staticmethod
    def _parse(p: Path, text: str) -> tuple[dict[str, str], dict[str, str | None]]:
        try:
            doc = json.loads(text)
            files, pending = doc["files"], doc.get("pending", {})
            if doc.get("schema_version") != SCHEMA_VERSION or not isinstance(files, dict) \
                    or not isinstance(pending, dict):
                raise ValueError("unexpected schema")
            return ({str(k): str(v) for k, v in files.items()},
                    {str(k): (None if v is None else str(v)) for k, v in pending.items()})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BaselineError(f"{p}: corrupt baseline manifest ({exc}); restore it from git") from None

    def write(self, files: dict[str, str], pending: dict[str, str | None] | None = None) -> None:
        """Replace the manifest atomically; ``pending`` only when there is any."""
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "suite": self.suite,
                               "files": dict(sorted(files.items()))}
        if pending:
            doc["pending"] = dict(sorted(pending.items()))
        atomic_write_text(self.path, _dump_manifest(doc))

    def disk_files(self) -> list[str]:
        """Relative paths of every file in the folder but the manifest and the lock, sorted."""
        out = []
        for dirpath, _dirs, names in os.walk(self.folder):
            for name in names:
                rel = (Path(dirpath) / name).relative_to(self.folder).as_posix()
                if rel not in (MANIFEST, LOCK):
                    out.append(rel)
        return sorted(out)

    def _compare(self, files: dict[str, str]) -> tuple[list[tuple[str, str]], list[str]]:
        """Each listed file's state, ``[(rel, "verified" | "missing" | "mismatch")]`` in sorted order,
        and the files on disk that ``files`` does not list (strays), sorted.  Read-only."""
        on_disk = set(self.disk_files())  # empty when the folder is not there
        listed = [(rel, "missing" if rel not in on_disk
                   else "verified" if file_sha(self.folder / rel) == digest else "mismatch")
                  for rel, digest in sorted(files.items())]
        return listed, sorted(on_disk - set(files))

    def check(self, check: StoreCheck) -> StoreCheck:
        """Fill ``check`` with every file compared against the manifest: verified, missing,
        mismatched, strays (temp files among them), pending.  Read-only."""
        files, pending = self.read()
        listed, strays = self._compare(files)
        into = {"verified": check.verified, "missing": check.missing, "mismatch": check.mismatched}
        for rel, state in listed:
            into[state].append(self.folder / rel)
        for rel in strays:
            check.strays.append(self.folder / rel)
            if is_temp_name(rel.rsplit("/", 1)[-1]):
                check.temps.append(self.folder / rel)
        check.pending = [self.folder / rel for rel in sorted(pending)]
        return check

    def scan(self, files: dict[str, str]) -> list[BakeChange]:
        """What a bake found out of place against ``files`` (the manifest it recorded): one
        ``missing``, ``mismatch`` or ``stray`` change per file, with what to do about it."""
        why = {"missing": f"listed in {MANIFEST} but not on disk",
               "mismatch": f"checksum does not match {MANIFEST}: re-bake its case or restore it from git"}
        listed, strays = self._compare(files)
        out = [BakeChange(rel, state, self.folder / rel, why[state]) for rel, state in listed if state != "verified"]
        out += [BakeChange(rel, "stray", self.folder / rel, f"not in {MANIFEST}: bake its case or delete it")
                for rel in strays]
        return out
