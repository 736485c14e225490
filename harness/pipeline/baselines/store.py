"""The baseline store (:class:`BaselineStore`): small JSON files of slice values, guarded by a sha256 manifest.

Layout::

    baselines/<suite>/MANIFEST.json                      {"schema_version", "suite", "files": {rel: sha256}}
    baselines/<suite>/<vector>/<pipeline>/s<seed>.json   one case: measurement + stage numbers
    baselines/<suite>/.lock                              exists only while a bake writes

Nothing here overwrites silently: :meth:`BaselineStore.bake` returns what changed (and
what it found out of place), and the CLI prints it.  A file whose checksum does not match
the manifest, or that is not valid JSON, is an error naming the file.

**Writers lock.**  A bake holds an exclusive ``fcntl.flock`` on ``<suite>/.lock`` for its
whole write phase (:func:`harness.fsio.file_lock`: advisory, reliable on a local file
system only), re-reads the manifest under it and merges its changes into what is there,
so two bakes of one suite at once (say ``-k A`` and ``-k B``) both land.  Readers
(:meth:`load`, the runner) do not lock: files and manifest are replaced atomically, and a
run that overlaps a bake may see a case mid-update as an error naming the file.

**Write order** (crash safety).  Under the lock a bake

1. finishes what a killed bake left (see below) and deletes ``.<name>.*.tmp`` temp files;
2. writes the manifest with a ``"pending": {rel: new sha256, or null for a removal}``
   record of every file it is about to write or delete (the intent), ``"files"`` unchanged;
3. replaces each baseline file atomically (temp file + rename) or deletes it;
4. fsyncs the folders, then writes the manifest with ``"files"`` updated and no ``"pending"``.

A kill at any point therefore leaves every baseline file either matching ``"files"``,
or matching its ``"pending"`` sum (written, not yet recorded), or an unlisted file that
:meth:`strays` and :meth:`verify` report; temp files are the only other debris.  The next
bake (or ``verify(repair=True)``) records a pending entry whose file has its new sum,
drops one whose file still has its old sum, deletes the temp files, and reports both.
Until then :meth:`load` refuses a pending file, saying why.  A manifest without pending
work has no ``"pending"`` key, byte for byte the format of schema 1.

**Documents are reproducible.**  A baseline keeps only what identifies how its values
were made and is stable across runs (:func:`stable_environment`: device, threads (set
and applied), machine, package versions but harness's own; the pipeline's stage parameters; stage numbers rounded like
measurement values), never a git sha, a path, a run id or a time, so re-baking an
unchanged case leaves its file byte-identical (``unchanged``).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BaselineError
from harness.fsio import (
    atomic_write_text,
    file_lock,
    fsync_dir,
    is_temp_name,
    remove_temp_files,
)
from harness.measuring.result import Measurement, floor_std

from harness.pipeline.baselines.document import (
    LOCK,
    MANIFEST,
    SCHEMA_VERSION,
    BakeChange,
    Baseline,
    BaselineWriteError,
    StoreCheck,
    _dump,
    _dump_manifest,
    _file_sha,
    _sha256,
    baseline_document,
    spread_by_slice,
)

__all__ = ["BaselineStore"]


@dataclass
class _Op:
    case_id: str
    rel: str
    path: Path
    body: str | None  # None: delete
    digest: str | None
    change: BakeChange


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
        return self.dir / MANIFEST

    @property
    def lock_path(self) -> Path:
        return self.dir / LOCK

    def path_for(self, case_id: str) -> Path:
        vector, pipeline, seed = case_id.split("/")
        return self.dir / vector / pipeline / f"{seed}.json"

    def rel(self, case_id: str) -> str:
        return self.path_for(case_id).relative_to(self.dir).as_posix()

    # -- manifest -----------------------------------------------------------
    def manifest(self) -> dict[str, str]:
        """``{relative path: sha256}`` of every recorded baseline file."""
        return self._read_manifest()[0]

    def _read_manifest(self) -> tuple[dict[str, str], dict[str, str | None]]:
        p = self.manifest_path
        try:
            text = p.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):
            return {}, {}
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

    def _write_manifest(self, files: dict[str, str], pending: dict[str, str | None] | None = None) -> None:
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "suite": self.suite,
                               "files": dict(sorted(files.items()))}
        if pending:
            doc["pending"] = dict(sorted(pending.items()))
        atomic_write_text(self.manifest_path, _dump_manifest(doc))

    # -- read ---------------------------------------------------------------
    def exists(self, case_id: str) -> bool:
        return self.rel(case_id) in self.manifest() or self.path_for(case_id).exists()

    def load(self, case_id: str) -> Baseline | None:
        """The case's baseline, or ``None`` when there is none; raises on tampering/corruption."""
        p = self.path_for(case_id)
        rel = self.rel(case_id)
        manifest, pending = self._read_manifest()
        interrupted = ("; an interrupted `harness bake` left it unrecorded (run `harness bake` again to "
                       "finish it)" if rel in pending else "")
        if not p.exists():
            if rel in manifest:
                raise BaselineError(f"{p}: listed in {self.manifest_path.name} but missing on disk{interrupted}")
            return None
        data = p.read_bytes()
        if rel not in manifest:
            raise BaselineError(f"{p}: not in {self.manifest_path}{interrupted or '; bake it with `harness bake` or delete it'}")
        if _sha256(data) != manifest[rel]:
            raise BaselineError(f"{p}: checksum does not match {self.manifest_path.name}"
                                + (interrupted or " (edited by hand or corrupt); re-bake or restore it from git"))
        try:
            doc = json.loads(data)
            if doc.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
            spread = spread_by_slice(doc)  # {} for an un-calibrated baseline
            return Baseline(case_id, floor_std(Measurement.from_dict(doc["measurement"]), spread),
                            dict(doc.get("stages", {})), dict(doc.get("environment", {})),
                            dict(doc.get("pipeline", {})), spread, _selfcheck(doc))
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

    def group_case_ids(self, vector: str, pipeline: str) -> list[str]:
        """Every stored seed of one distribution group (``vector/pipeline/s<seed>``), by seed."""
        prefix = f"{vector}/{pipeline}/s"
        seeds = [c for c in self.case_ids() if c.startswith(prefix) and c[len(prefix):].lstrip("-").isdigit()]
        return sorted(seeds, key=lambda c: int(c[len(prefix):]))

    def obsolete(self, expected: Iterable[str], k_filter=None) -> list[str]:
        """Baselines whose case is not in ``expected``; with ``k_filter`` only those it selects."""
        exp = set(expected)
        return [c for c in self.case_ids() if c not in exp and (k_filter is None or k_filter(c))]

    # -- what is in the folder ------------------------------------------------
    def _disk_files(self) -> list[str]:
        """Relative paths of every file in the suite folder but the manifest and the lock."""
        out = []
        for dirpath, _dirs, names in os.walk(self.dir):
            for name in names:
                rel = (Path(dirpath) / name).relative_to(self.dir).as_posix()
                if rel not in (MANIFEST, LOCK):
                    out.append(rel)
        return sorted(out)

    def strays(self) -> list[Path]:
        """Files in the suite's baseline folder that the manifest does not list: stray
        ``.json`` files, editor backups, temp files of interrupted writes.  Read-only, no
        lock; what a run prints as notes.  ``[]`` when the manifest itself is corrupt
        (every :meth:`load` reports that)."""
        try:
            files = self.manifest()
        except BaselineError:
            return []
        return [self.dir / rel for rel in self._disk_files() if rel not in files]

    def verify(self, *, repair: bool = False, on_wait: Callable[[str], None] | None = None) -> StoreCheck:
        """Check every file against the manifest.  With ``repair`` (under the bake lock)
        first finish what an interrupted bake left: record or drop its pending writes and
        delete temp files (``StoreCheck.repaired`` says what).  Never rewrites a baseline."""
        check = StoreCheck()
        if repair and self.dir.is_dir():
            try:
                with file_lock(self.lock_path, on_wait=on_wait):
                    check.repaired = self._housekeep()
            except OSError as exc:
                raise BaselineWriteError(self._failure(exc, "nothing was changed")) from exc
        files, pending = self._read_manifest()
        on_disk = set(self._disk_files()) if self.dir.is_dir() else set()
        for rel, digest in sorted(files.items()):
            p = self.dir / rel
            if rel not in on_disk:
                check.missing.append(p)
            elif _file_sha(p) == digest:
                check.verified.append(p)
            else:
                check.mismatched.append(p)
        for rel in sorted(on_disk - set(files)):
            check.strays.append(self.dir / rel)
            if is_temp_name(rel.rsplit("/", 1)[-1]):
                check.temps.append(self.dir / rel)
        check.pending = [self.dir / rel for rel in sorted(pending)]
        return check

    def _housekeep(self) -> list[BakeChange]:
        """Under the lock: resolve an interrupted bake's pending record, delete temp files."""
        out: list[BakeChange] = []
        files, pending = self._read_manifest()
        if pending:
            for rel, target in sorted(pending.items()):
                p = self.dir / rel
                now = _file_sha(p)
                if now == target:
                    if target is None:
                        files.pop(rel, None)
                        out.append(BakeChange(rel, "recovered", p, "deleted by an interrupted bake; now unlisted"))
                    else:
                        files[rel] = target
                        out.append(BakeChange(rel, "recovered", p, "written by an interrupted bake; now recorded"))
                # else the interrupted bake never got to it (old sum), or somebody changed it
                # since: the manifest keeps its old entry, and a mismatch or stray is reported
            self._write_manifest(files)
        for t in remove_temp_files(self.dir):
            out.append(BakeChange(t.relative_to(self.dir).as_posix(), "cleaned", t,
                                  "temp file of an interrupted write; deleted"))
        return out

    def _scan(self, files: dict[str, str]) -> list[BakeChange]:
        out = []
        on_disk = set(self._disk_files())
        for rel, digest in sorted(files.items()):
            p = self.dir / rel
            if rel not in on_disk:
                out.append(BakeChange(rel, "missing", p, f"listed in {MANIFEST} but not on disk"))
            elif _file_sha(p) != digest:
                out.append(BakeChange(rel, "mismatch", p, f"checksum does not match {MANIFEST}: re-bake its case "
                                                          "or restore it from git"))
        for rel in sorted(on_disk - set(files)):
            out.append(BakeChange(rel, "stray", self.dir / rel, f"not in {MANIFEST}: bake its case or delete it"))
        return out

    # -- write --------------------------------------------------------------
    def bake(self, entries: Iterable[tuple[str, dict[str, Any]]], *, new_only: bool = False,
             prune: Iterable[str] = (), on_wait: Callable[[str], None] | None = None) -> list[BakeChange]:
        """Write ``(case_id, document)`` baselines; report every change.

        ``document`` holds ``measurement``, ``stages``, ``environment`` and ``pipeline``
        (stored as :func:`baseline_document` makes it).  With ``new_only`` existing baselines
        are left alone.  ``prune`` lists obsolete case ids to delete.  Holds the suite's lock
        for the whole write phase (``on_wait(message)`` is called if another bake holds it);
        see the module doc for the write order.  Besides one change per case the result
        holds what was found in the folder: ``recovered``, ``cleaned``, ``stray``,
        ``mismatch``, ``missing``.  Raises :class:`BaselineWriteError` (naming the path) when
        the file system refuses a write, leaving the store consistent.
        """
        wanted: dict[str, tuple[str, str]] = {}  # rel -> (case_id, body); the last document of a case wins
        for case_id, doc in entries:
            wanted[self.rel(case_id)] = (case_id, _dump(baseline_document(case_id, doc)))
        prune = list(prune)
        for case_id in prune:  # an obsolete case is deleted, not written again
            wanted.pop(self.rel(case_id), None)
        found: list[BakeChange] = []
        done: list[BakeChange] = []
        try:
            try:
                self.dir.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):  # a file where the folder or one above it should be
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(self._in_the_way())) from None
            with file_lock(self.lock_path, on_wait=on_wait):
                found = self._housekeep()
                files, _ = self._read_manifest()
                ops, ordered = self._plan(wanted, prune, files, new_only)
                if ops:
                    self._write_manifest(files, {op.rel: op.digest for op in ops})  # the intent
                    try:
                        self._apply(ops, files, done)
                    except OSError as exc:
                        try:
                            self._housekeep()  # record what was written, drop the rest
                            note = (f"{len(done)} of {len(ops)} changes written and recorded in {MANIFEST}, "
                                    "the others not made")
                        except OSError:
                            note = (f"{len(done)} of {len(ops)} changes written; {MANIFEST} lists the interrupted "
                                    "ones as pending and the next `harness bake` records or drops them")
                        raise BaselineWriteError(self._failure(exc, note), found + done) from exc
                tail = self._scan(files)
        except OSError as exc:
            raise BaselineWriteError(self._failure(exc, "nothing was changed"), found) from exc
        return found + ordered + tail

    def _plan(self, wanted: dict[str, tuple[str, str]], prune: list[str], files: dict[str, str],
              new_only: bool) -> tuple[list[_Op], list[BakeChange]]:
        ops: list[_Op] = []
        ordered: list[BakeChange] = []
        for rel, (case_id, body) in wanted.items():
            p = self.path_for(case_id)
            digest = _sha256(body.encode("utf-8"))
            listed, now = files.get(rel), _file_sha(p)
            if listed is not None or now is not None:
                if new_only:
                    ordered.append(BakeChange(case_id, "skipped", p, "exists (--new-only)"))
                    continue
                if listed == digest and now == digest:
                    ordered.append(BakeChange(case_id, "unchanged", p))
                    continue
                if now is None:
                    action, detail = "new", f"was listed in {MANIFEST} but missing on disk"
                else:
                    action, detail = "changed", self._describe_change(p, json.loads(body))
                    if now != listed:
                        detail = f"replaces a file that did not match {MANIFEST}; {detail}"
            else:
                action, detail = "new", ""
            change = BakeChange(case_id, action, p, detail)
            ops.append(_Op(case_id, rel, p, body, digest, change))
            ordered.append(change)
        for case_id in prune:
            p, rel = self.path_for(case_id), self.rel(case_id)
            if rel not in files and not p.exists():
                continue
            change = BakeChange(case_id, "removed", p, "obsolete")
            ops.append(_Op(case_id, rel, p, None, None, change))
            ordered.append(change)
        return ops, ordered

    def _apply(self, ops: list[_Op], files: dict[str, str], done: list[BakeChange]) -> None:
        folders = set()
        for op in ops:
            if op.body is None:
                op.path.unlink(missing_ok=True)
                _remove_empty_parents(op.path.parent, self.dir)
            else:
                atomic_write_text(op.path, op.body)
            folders.add(op.path.parent)
            done.append(op.change)
        for folder in sorted(folders):
            fsync_dir(folder)
        for op in ops:
            if op.digest is None:
                files.pop(op.rel, None)
            else:
                files[op.rel] = op.digest
        self._write_manifest(files)  # the commit
        fsync_dir(self.dir)

    def _in_the_way(self) -> Path:
        """The file that stops the suite folder from being a folder (or the folder itself)."""
        for p in (self.dir, *self.dir.parents):
            if p.exists():
                return p if not p.is_dir() else self.dir
        return self.dir

    def _failure(self, exc: OSError, note: str) -> str:
        where = exc.filename or exc.filename2 or self.dir
        reason = exc.strerror or str(exc) or type(exc).__name__
        return f"{where}: {reason}; cannot write the baselines in {self.dir}: {note}"

    @staticmethod
    def _describe_change(path: Path, new: dict[str, Any]) -> str:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            if old.get("measurement") == new["measurement"] and old.get("stages") == new["stages"]:
                keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                env_old, env_new = old.get("environment") or {}, new.get("environment") or {}
                fields = sorted(k for k in set(env_old) | set(env_new) if env_old.get(k) != env_new.get(k))
                return "same values; only the record changed: " + ", ".join(
                    f"environment ({', '.join(fields)})" if k == "environment" and fields else k for k in keys)
            a = Measurement.from_dict(old["measurement"])
            b = Measurement.from_dict(new["measurement"])
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


def _selfcheck(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document's ``selfcheck`` record ({} when none); a malformed one is a corrupt baseline."""
    rec = doc.get("selfcheck") or {}
    if not isinstance(rec, dict) or (rec and not isinstance(rec.get("false_alarm_rate"), (int, float))):
        raise TypeError("selfcheck is not a record with a false_alarm_rate")
    return dict(rec)


def _remove_empty_parents(folder: Path, top: Path) -> None:
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
