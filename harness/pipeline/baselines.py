"""The baseline store: small JSON files of slice values, guarded by a sha256 manifest.

Layout::

    baselines/<suite>/MANIFEST.json                      {"schema_version", "files": {rel: sha256}}
    baselines/<suite>/<vector>/<pipeline>/s<seed>.json   one case: measurement + stage numbers

Every write is atomic (temporary file + rename) and the manifest is rewritten
after the files it lists.  Nothing here overwrites silently: :func:`bake`
returns what changed, and the CLI prints it.  A file whose checksum does not
match the manifest, or that is not valid JSON, is an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from harness.errors import BaselineError
from harness.fsio import atomic_write_text
from harness.measuring.result import Measurement

__all__ = ["BaselineStore", "Baseline", "BakeChange", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclass
class Baseline:
    case_id: str
    measurement: Measurement
    stages: dict[str, float]
    environment: dict[str, Any]
    pipeline: dict[str, Any]


@dataclass
class BakeChange:
    case_id: str
    action: str  # "new" | "changed" | "unchanged" | "skipped"
    path: Path
    detail: str = ""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n"


def _dump_manifest(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


@dataclass
class BaselineStore:
    """Baselines of one suite under ``root/<suite>/``."""

    suite: str
    root: Path

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.suite

    @property
    def manifest_path(self) -> Path:
        return self.dir / "MANIFEST.json"

    def path_for(self, case_id: str) -> Path:
        vector, pipeline, seed = case_id.split("/")
        return self.dir / vector / pipeline / f"{seed}.json"

    def rel(self, case_id: str) -> str:
        return self.path_for(case_id).relative_to(self.dir).as_posix()

    # -- manifest -----------------------------------------------------------
    def manifest(self) -> dict[str, str]:
        p = self.manifest_path
        if not p.exists():
            return {}
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            files = doc["files"]
            if doc.get("schema_version") != SCHEMA_VERSION or not isinstance(files, dict):
                raise ValueError("unexpected schema")
            return {str(k): str(v) for k, v in files.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise BaselineError(f"{p}: corrupt baseline manifest ({exc}); restore it from git") from None

    def _write_manifest(self, files: dict[str, str]) -> None:
        atomic_write_text(self.manifest_path, _dump_manifest({"schema_version": SCHEMA_VERSION, "suite": self.suite,
                                                     "files": dict(sorted(files.items()))}))

    # -- read ---------------------------------------------------------------
    def exists(self, case_id: str) -> bool:
        return self.rel(case_id) in self.manifest() or self.path_for(case_id).exists()

    def load(self, case_id: str) -> Baseline | None:
        """The case's baseline, or ``None`` when there is none; raises on tampering/corruption."""
        p = self.path_for(case_id)
        rel = self.rel(case_id)
        manifest = self.manifest()
        if not p.exists():
            if rel in manifest:
                raise BaselineError(f"{p}: listed in {self.manifest_path.name} but missing on disk")
            return None
        data = p.read_bytes()
        if rel not in manifest:
            raise BaselineError(f"{p}: not in {self.manifest_path}; bake it with `harness bake` or delete it")
        if _sha256(data) != manifest[rel]:
            raise BaselineError(f"{p}: checksum does not match {self.manifest_path.name} "
                                f"(edited by hand or corrupt); re-bake or restore it from git")
        try:
            doc = json.loads(data)
            if doc.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
            return Baseline(case_id, Measurement.from_dict(doc["measurement"]), dict(doc.get("stages", {})),
                            dict(doc.get("environment", {})), dict(doc.get("pipeline", {})))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BaselineError(f"{p}: corrupt baseline ({exc})") from None

    def case_ids(self) -> list[str]:
        """Case ids of every baseline listed in the manifest."""
        out = []
        for rel in self.manifest():
            parts = rel[: -len(".json")].split("/")
            if len(parts) == 3:
                out.append("/".join(parts))
        return sorted(out)

    def obsolete(self, expected: Iterable[str], k_filter=None) -> list[str]:
        """Baselines whose case is not in ``expected``; with ``k_filter`` only those it selects."""
        exp = set(expected)
        return [c for c in self.case_ids() if c not in exp and (k_filter is None or k_filter(c))]

    # -- write --------------------------------------------------------------
    def bake(self, entries: Iterable[tuple[str, dict[str, Any]]], *, new_only: bool = False,
             prune: Iterable[str] = ()) -> list[BakeChange]:
        """Write ``(case_id, document)`` baselines atomically; report every change.

        ``document`` holds ``measurement``, ``stages``, ``environment`` and
        ``pipeline``.  With ``new_only`` existing baselines are left alone.
        ``prune`` lists obsolete case ids to delete.
        """
        files = self.manifest()
        changes: list[BakeChange] = []
        for case_id, doc in entries:
            p, rel = self.path_for(case_id), self.rel(case_id)
            body = _dump({"schema_version": SCHEMA_VERSION, "case": case_id, **doc})
            digest = _sha256(body.encode("utf-8"))
            if rel in files or p.exists():
                if new_only:
                    changes.append(BakeChange(case_id, "skipped", p, "exists (--new-only)"))
                    continue
                if files.get(rel) == digest:
                    changes.append(BakeChange(case_id, "unchanged", p))
                    continue
                detail = self._describe_change(p, doc)
                action = "changed"
            else:
                action, detail = "new", ""
            atomic_write_text(p, body)
            files[rel] = digest
            self._write_manifest(files)  # after each file: a crash leaves a consistent store
            changes.append(BakeChange(case_id, action, p, detail))
        for case_id in prune:
            p, rel = self.path_for(case_id), self.rel(case_id)
            files.pop(rel, None)
            self._write_manifest(files)
            if p.exists():
                p.unlink()
            changes.append(BakeChange(case_id, "removed", p, "obsolete"))
        return changes

    @staticmethod
    def _describe_change(path: Path, doc: dict[str, Any]) -> str:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            a = Measurement.from_dict(old["measurement"])
            b = Measurement.from_dict(doc["measurement"])
        except Exception:  # noqa: BLE001 - an unreadable old file is simply replaced
            return "replaces an unreadable file"
        from harness.comparing.engine import compare_paired

        try:
            checks = compare_paired(a, b)
        except ValueError as exc:
            return str(exc)
        moved = [c for c in checks if c.status != "pass" and c.status != "skip"]
        worst = max(checks, key=lambda c: c.severity, default=None)
        if not moved:
            return "values moved within tolerance"
        return f"{len(moved)} slice(s) beyond tolerance, worst {worst.metric} [{worst.slice}] " \
               f"{worst.baseline:.4g} -> {worst.value:.4g}" if worst and worst.value is not None else \
               f"{len(moved)} slice(s) beyond tolerance"
