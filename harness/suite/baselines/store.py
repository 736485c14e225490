"""The baseline store (:class:`BaselineStore`): small JSON files of slice values, guarded by a sha256 manifest.

Layout::

    baselines/<suite>/MANIFEST.json                      {"schema_version", "suite", "files": {rel: sha256}}
    baselines/<suite>/<vector>/<pipeline>/s<seed>.json   one case: measurement + stage numbers + reference images (sha256)
    baselines/<suite>/.lock                              exists only while a bake writes

The store maps case ids to files inside the suite's folder and reads them; the manifest's
format and the folder check are :mod:`.manifest`'s, the bake's locking, write order and
crash recovery :mod:`.bake`'s.

Nothing here overwrites silently: :meth:`BaselineStore.bake` returns what changed (and
what it found out of place), and the CLI prints it.  A file whose checksum does not match
the manifest, or that is not valid JSON, is an error naming the file; so is a file that an
interrupted bake left unrecorded, until the next bake (or ``verify(repair=True)``) finishes it.

**Documents are reproducible.**  A baseline keeps only what identifies how its values
were made and is stable across runs (:func:`stable_environment`: device, threads (set
and applied), machine, package versions but harness's own; the pipeline's stage parameters; stage numbers rounded like
measurement values), never a path; re-baking an unchanged case leaves its file byte-identical
(``unchanged``: it is not rewritten).  Its ``approvals`` (who, when, why, from which run and
commit) change only with a rewrite.  A bake with a review (:mod:`.review`) also keeps a case
whose values moved within tolerance.  Files are in the reviewable layout of :mod:`.layout`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BaselineError
from harness.measuring.result import Measurement, floor_std
from harness.naming import check_case_id, check_name
from harness.suite.baselines import bake as _bake
from harness.suite.baselines import layout
from harness.suite.baselines.document import (
    LOCK,
    MANIFEST,
    BakeChange,
    Baseline,
    StoreCheck,
    approvals_of,
    baseline_document,
    images_of,
    read_document,
    spread_by_slice,
)
from harness.suite.baselines.manifest import Manifest, sha256

__all__ = ["BaselineStore"]

_RECENT = 8  # Baselines kept by BaselineStore.load (callers read them, never change them)


@dataclass
class BaselineStore:
    """Baselines of one suite under ``root/<suite>/``."""

    suite: str
    root: Path
    # case id -> (sha256 of the file, its reference images), kept by load(): a run asks for every
    # case's images again at its end (missing_reference_notes) and need not parse each file again
    _images: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict, repr=False, compare=False)
    # the last few loads by case id: (sha256 of the file, the Baseline); a run loads a case's baseline
    # to judge it and again for its case memo entry, and a parse is ~5-30 ms (225 kB of JSON for smoke)
    _recent: dict[str, tuple[str, Any]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dir(self) -> Path:
        return Path(self.root) / self.suite

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def lock_path(self) -> Path:
        return self.dir / LOCK

    def __post_init__(self) -> None:
        try:
            check_name("suite", self.suite)  # the suite's folder is a path part under root
        except ValueError as exc:
            raise BaselineError(f"{self.root}: {exc}: no baseline folder is made from it") from None

    def path_for(self, case_id: str) -> Path:
        """``<suite>/<vector>/<pipeline>/s<seed>.json``, confirmed inside the suite's folder.

        Every write and delete of a bake goes through here: an id that is not a case id
        (``../../s1``), or a path that a symlink carries out of the folder, is a BaselineError
        before anything is written."""
        try:
            vector, pipeline, seed = check_case_id(case_id).split("/")
        except ValueError as exc:
            raise BaselineError(f"{self.dir}: {exc}: no baseline path is made from it") from None
        p = self.dir / vector / pipeline / f"{seed}.json"
        root = self.dir.resolve()
        if root not in p.resolve().parents:
            raise BaselineError(f"{p}: resolves to {p.resolve()}, outside the suite's baseline folder {root}; "
                                "a baseline is only written inside it")
        return p

    def rel(self, case_id: str) -> str:
        return self.path_for(case_id).relative_to(self.dir).as_posix()

    @property
    def manifest_file(self) -> Manifest:
        """The suite's manifest: its sha256 sums, the pending record of a bake, the folder check."""
        return Manifest(self.dir, self.suite)

    # -- manifest -----------------------------------------------------------
    def manifest(self) -> dict[str, str]:
        """``{relative path: sha256}`` of every recorded baseline file."""
        return self.manifest_file.read()[0]

    # -- read ---------------------------------------------------------------
    def exists(self, case_id: str) -> bool:
        return self.rel(case_id) in self.manifest() or self.path_for(case_id).exists()

    def load(self, case_id: str) -> Baseline | None:
        """The case's baseline, or ``None`` when there is none; raises on tampering/corruption."""
        p = self.path_for(case_id)
        rel = self.rel(case_id)
        manifest, pending = self.manifest_file.read()
        interrupted = ("; an interrupted `harness bake` left it unrecorded (run `harness bake` again to "
                       "finish it)" if rel in pending else "")
        if not p.exists():
            if rel in manifest:
                raise BaselineError(f"{p}: listed in {self.manifest_path.name} but missing on disk{interrupted}")
            return None
        data = p.read_bytes()
        if rel not in manifest:
            raise BaselineError(f"{p}: not in {self.manifest_path}{interrupted or '; bake it with `harness bake` or delete it'}")
        if sha256(data) != manifest[rel]:
            raise BaselineError(f"{p}: checksum does not match {self.manifest_path.name}"
                                + (interrupted or " (edited by hand or corrupt); re-bake or restore it from git"))
        recent = self._recent.get(case_id)
        if recent is not None and recent[0] == manifest[rel]:  # the same bytes parsed just now: the same Baseline
            return recent[1]
        try:
            doc = read_document(data)  # either layout (schema 1: one line; 2: one slice per line)
            spread = spread_by_slice(doc)  # {} for an un-calibrated baseline
            base = Baseline(case_id, floor_std(Measurement.from_dict(doc["measurement"]), spread),
                            dict(doc.get("stages", {})), dict(doc.get("environment", {})),
                            dict(doc.get("pipeline", {})), spread, _selfcheck(doc), images_of(doc),
                            list(doc.get("accepted_failing") or []), approvals_of(doc))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BaselineError(f"{p}: corrupt baseline ({exc})") from None
        self._images[case_id] = (manifest[rel], dict(base.images))
        self._recent[case_id] = (manifest[rel], base)
        while len(self._recent) > _RECENT:
            del self._recent[next(iter(self._recent))]
        return base

    def images(self, case_id: str) -> dict[str, str]:
        """The case's reference images ``{stage: "sha256:…"}`` (``{}``: no baseline, or one baked
        without them); raises BaselineError like :meth:`load`.  A file :meth:`load` parsed before is
        not parsed again while its bytes still match the manifest and what was parsed."""
        known = self._images.get(case_id)
        if known is not None:
            p = self.path_for(case_id)
            try:
                data = p.read_bytes()
            except OSError:
                data = None
            if data is not None and sha256(data) == known[0] == self.manifest().get(self.rel(case_id)):
                return dict(known[1])
        baseline = self.load(case_id)
        return dict(baseline.images) if baseline is not None else {}

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
    def strays(self) -> list[Path]:
        """Files in the suite's baseline folder that the manifest does not list: stray
        ``.json`` files, editor backups, temp files of interrupted writes.  Read-only, no
        lock; what a run prints as notes.  ``[]`` when the manifest itself is corrupt
        (every :meth:`load` reports that)."""
        try:
            files = self.manifest()
        except BaselineError:
            return []
        return [self.dir / rel for rel in self.manifest_file.disk_files() if rel not in files]

    def verify(self, *, repair: bool = False, on_wait: Callable[[str], None] | None = None) -> StoreCheck:
        """Check every file against the manifest.  With ``repair`` (under the bake lock)
        first finish what an interrupted bake left: record or drop its pending writes and
        delete temp files (``StoreCheck.repaired`` says what).  Never rewrites a baseline."""
        check = StoreCheck()
        if repair and self.dir.is_dir():
            check.repaired = _bake.repair(self.manifest_file, on_wait)
        return self.manifest_file.check(check)

    # -- write --------------------------------------------------------------
    def bake(self, entries: Iterable[tuple[str, dict[str, Any]]], *, new_only: bool = False,
             prune: Iterable[str] = (), on_wait: Callable[[str], None] | None = None,
             review: _bake.Review | None = None, dry_run: bool = False) -> list[BakeChange]:
        """Write ``(case_id, document)`` baselines; report every change.

        ``document`` holds ``measurement``, ``stages``, ``environment`` and ``pipeline``
        (stored as :func:`baseline_document` makes it).  With ``new_only`` existing baselines
        are left alone.  ``prune`` lists obsolete case ids to delete.  Holds the suite's lock
        for the whole write phase (``on_wait(message)`` is called if another bake holds it);
        see :mod:`.bake` for the write order.  Besides one change per case the result
        holds what was found in the folder: ``recovered``, ``cleaned``, ``stray``,
        ``mismatch``, ``missing``.  Raises :class:`BaselineWriteError` (naming the path) when
        the file system refuses a write, leaving the store consistent.

        ``review`` (:func:`.review.review`'s verdicts and the approval to record): an existing
        case it keeps is not rewritten, and every written document carries the approval.
        ``dry_run``: return the same changes without the lock and without touching the folder.
        """
        wanted: dict[str, tuple[_bake.Target, dict[str, Any]]] = {}  # rel -> (target, doc); the last of a case wins
        for case_id, doc in entries:
            target = self._target(case_id)
            wanted[target.rel] = (target, baseline_document(case_id, doc))
            layout.check(wanted[target.rel][1])  # a document that cannot be a table fails before any write
        gone = [self._target(case_id) for case_id in prune]
        for target in gone:  # an obsolete case is deleted, not written again
            wanted.pop(target.rel, None)
        if dry_run:
            return _bake.preview(self.manifest_file, wanted, gone, new_only=new_only, review=review)
        return _bake.bake(self.manifest_file, wanted, gone, new_only=new_only, on_wait=on_wait, review=review)

    def _target(self, case_id: str) -> _bake.Target:
        p = self.path_for(case_id)
        return _bake.Target(case_id, p.relative_to(self.dir).as_posix(), p)


def _selfcheck(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document's ``selfcheck`` record ({} when none); a malformed one is a corrupt baseline."""
    rec = doc.get("selfcheck") or {}
    if not isinstance(rec, dict) or (rec and not isinstance(rec.get("false_alarm_rate"), (int, float))):
        raise TypeError("selfcheck is not a record with a false_alarm_rate")
    return dict(rec)
