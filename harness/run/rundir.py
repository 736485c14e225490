"""A run folder: created atomically and never shared, written case by case, report.json assembled once.

``reports/<run-id>/`` holds::

    .lock              flock'ed by every process writing the run: exclusively by ``harness run``,
                       shared by the processes of one pytest session (the controller and its
                       xdist workers; the file holds the session's token); the kernel drops it when
                       a process ends, kill -9 included: "is it still running?" is one probe
                       (:func:`harness.report.schema.run_in_progress`)
    report.json        written when the run starts: ``complete: false``, no cases, ``planned``: the
                       case ids it will record (a reader mid-run sees an incomplete run that every
                       consumer fails); written again ONCE at the end, or on an interrupt, from the
                       case records
    checks/<slug>.parquet      every check of one finished case (atomic), until compaction
    cases/<slug>.measure.npz   its measurement, float arrays (atomic)
    cases/<slug>.json          its record ``{"schema_version", "case", "measurement"}`` (atomic):
                               written last, so a case is recorded once this file exists; it holds
                               the case's deciding checks and check counts
    checks.parquet     every check of the run, compacted from the parts by :meth:`RunFolder.finish`
                       (at the end, on an interrupt, at the end of a resumed run), just before
                       the final report.json
    checks.csv         only on request (``harness run --csv``), derived from the checks
    artifacts/<slug>/  stage PNGs (written by the workers)

``harness run`` makes its folder with :meth:`RunFolder.create`; a pytest session with
:meth:`RunFolder.claim` (the first of its processes to run an item of a suite creates the folder
and writes the header, the others find it by the session's token).

A case is recorded when its checks part, its measurement and then its case file are written, each
atomically and each its own file, so the processes of a pytest session never write one file
together and a crash leaves at most a part without a record (ignored: its case is missing).
After recording, the in-memory :class:`CaseResult` keeps only its deciding checks and counts
(:meth:`CaseResult.keep_deciding`): a run of thousands of cases never holds all their checks.
Every ``OSError`` from writing comes out as a :class:`StorageError` naming the path.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from harness.errors import ConfigError
from harness.naming import case_slug

if TYPE_CHECKING:
    from harness.report.schema import CaseResult, Report

__all__ = ["RunFolder", "StorageError", "renamed_into_place"]


class StorageError(OSError):
    """Writing the run folder failed (read-only, unwritable, full); ``filename`` is the path."""

    @classmethod
    def of(cls, exc: OSError, path: str | os.PathLike[str]) -> StorageError:
        if isinstance(exc, StorageError):
            return exc
        return cls(exc.errno or errno.EIO, exc.strerror or str(exc), str(exc.filename or path))


def _refused(exc: OSError, path: Path, what: str) -> ConfigError:
    where = exc.filename or path
    return ConfigError(f"{where}: {what} ({exc.strerror or exc})")


def _make_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _refused(exc, root, "cannot create the reports folder here") from None
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder; cannot create the run folder there")


def _numbered(run_id: str, n: int) -> str:
    return run_id if n == 1 else f"{run_id}-{n}"


def _token(path: Path) -> str | None:
    try:
        return (path / ".lock").read_text(encoding="utf-8", errors="replace") or None
    except OSError:
        return None


@contextmanager
def _claiming(root: Path) -> Iterator[None]:
    """An exclusive flock on the reports folder while a pytest session claims a run folder in
    it (where the file system refuses flock on a folder, unserialised: mkdir stays exclusive)."""
    import fcntl

    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError as exc:
        raise _refused(exc, root, "cannot open the reports folder") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)  # drops the flock


def renamed_into_place(p: Path, data: bytes) -> None:
    """``data`` written to a temporary file beside ``p`` and renamed over it (atomic, no fsync)."""
    import secrets

    tmp = p.parent / f".{p.name}.{secrets.token_hex(4)}.tmp"  # named like fsio's temporary files
    try:
        with open(tmp, "xb") as fh:  # created with the umask's permissions, as atomic_write_bytes does
            fh.write(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class RunFolder:
    """One run's folder, held (locked) by this process from creation or reopening until :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    # -- creating and reopening
    @classmethod
    def create(cls, root: Path, run_id: str, *, exact: bool = False) -> RunFolder:
        """``root/run_id`` made with ``os.mkdir`` (atomic: two runs never share it); when it
        exists, ``run_id-2``, ``run_id-3`` ... unless ``exact`` (then a ConfigError)."""
        _make_root(root)
        n = 1
        while True:
            path = root / _numbered(run_id, n)
            try:
                os.mkdir(path)
                break
            except FileExistsError:
                if exact:
                    raise ConfigError(f"{path}: already exists; reports are never overwritten") from None
                n += 1
            except OSError as exc:
                raise _refused(exc, path, "cannot create the run folder") from None
        return cls._locked_new(path)

    @classmethod
    def _locked_new(cls, path: Path, token: str | None = None) -> RunFolder:
        folder = cls(path)
        try:
            folder._lock(token)
        except OSError as exc:
            folder.discard()
            raise _refused(exc, path / ".lock", "cannot write in the run folder") from None
        return folder

    @classmethod
    def claim(cls, root: Path, run_id: str, token: str, header: Callable[[str], Report]) -> tuple[RunFolder, bool]:
        """The run folder of one pytest session, whose processes share ``token``: the first one
        creates ``root/run_id`` (``run_id-2`` ... when another run has that name) and starts it
        with ``header(name)`` (:meth:`start`); the others find it by the token and ``run_id`` in its
        ``.lock``.
        Claims are serialised by an flock on ``root``, so two sessions never share a folder and
        one session never makes two.  The folder is held with a shared lock.  Returns the folder
        and whether this process created it."""
        _make_root(root)
        mark = f"{token} {run_id}"  # one session may ask for "x" and "x-2" (two suites of one name)
        with _claiming(root):
            n = 1
            while True:
                path = root / _numbered(run_id, n)
                if path.is_dir() and _token(path) == mark:
                    return cls.attach(path), False
                try:
                    os.mkdir(path)
                    break
                except FileExistsError:
                    n += 1
                except OSError as exc:
                    raise _refused(exc, path, "cannot create the run folder") from None
            folder = cls._locked_new(path, mark)
            try:
                folder.start(header(path.name))
            except StorageError as exc:
                folder.discard()
                raise ConfigError(f"{exc.filename}: cannot write the run folder ({exc.strerror})") from None
            return folder, True

    @classmethod
    def attach(cls, path: Path) -> RunFolder:
        """A folder another process of this pytest session started: held with a shared lock (the
        session's owner holds it so until it writes the final report.json)."""
        folder = cls(path)
        try:
            folder._lock(shared=True)
        except OSError as exc:
            raise _refused(exc, path / ".lock", "cannot hold the run folder") from None
        return folder

    @classmethod
    def reopen(cls, path: Path) -> RunFolder:
        """An existing run folder, to resume it: refused while another process holds it."""
        if not (path / "report.json").is_file():
            raise ConfigError(f"--resume {path}: not a run folder (no report.json)")
        folder = cls(path)
        try:
            folder._lock()
        except BlockingIOError:
            raise ConfigError(f"--resume {path}: another harness process is still writing this run") from None
        except OSError as exc:
            raise _refused(exc, path / ".lock", "cannot write in the run folder") from None
        return folder

    def _lock(self, token: str | None = None, *, shared: bool = False) -> None:
        """flock ``.lock``: exclusive for one process's run, shared (and ``token`` written in it)
        for a pytest session's."""
        import fcntl

        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared or token else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            if token:
                os.write(fd, token.encode())
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def discard(self) -> None:
        """Remove a folder this process just created and could not start (nothing of value in it)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    # -- writing
    def start(self, report: Report) -> None:
        """The header report.json (no cases, ``complete: false``) and the folders cases go to."""
        from harness.report.check_parts import PARTS_DIR

        self._write(self.path / "cases", lambda p: p.mkdir(exist_ok=True))
        self._write(self.path / PARTS_DIR, lambda p: p.mkdir(exist_ok=True))
        self._write(self.path / "report.json", lambda p: report.write(self.path))

    def add(self, case: CaseResult, measurement: dict[str, Any] | None) -> None:
        """Record one finished case: its checks part (every check), its measurement, then its case
        file (the commit point).  Once the part holds every check, ``case`` keeps only its deciding
        ones (the case file lists those): all of its checks are ranked once, not twice."""
        from harness.fsio import atomic_write_bytes, atomic_write_text
        from harness.report.checks_table import part_path, write_part
        from harness.report.measure_file import SUFFIX, measure_bytes
        from harness.report.schema import case_record_text

        slug = case_slug(case.id)
        self._write(part_path(self.path, case.id), lambda p: write_part(self.path, case))
        case.keep_deciding()
        ref = None
        if measurement is not None:
            data, digest = measure_bytes(measurement)
            ref = {"file": slug + SUFFIX, "sha256": digest}
            self._write(self.path / "cases" / ref["file"], lambda p: atomic_write_bytes(p, data))
        p = self.path / "cases" / f"{slug}.json"
        text = case_record_text(case, ref, p)  # validated like report.json: the reader's schema
        self._write(p, lambda p: atomic_write_text(p, text))

    def replay(self, case: CaseResult, part: bytes, measurement: tuple[dict[str, str], bytes] | None) -> None:
        """Record a case as another run recorded it (:mod:`harness.run.case_memo`): its checks part and
        measurement file as they were (``measurement``: its ``{"file", "sha256"}`` and bytes), then its
        case file from ``case`` (which holds its deciding checks and counts), like :meth:`add`.  Each
        is renamed into place but not fsync'ed: the memo entry they come from is the durable copy,
        and a power cut before the final report.json leaves the run incomplete, never wrong."""
        from harness.report.checks_table import part_path
        from harness.report.schema import case_record_text

        ref = None
        if measurement is not None:
            ref = measurement[0]
        p = self.path / "cases" / f"{case_slug(case.id)}.json"
        text = case_record_text(case, ref, p)  # refused (RuntimeError) before anything is written
        self._write(part_path(self.path, case.id), lambda p: renamed_into_place(p, part))
        if measurement is not None:
            self._write(self.path / "cases" / ref["file"], lambda p: renamed_into_place(p, measurement[1]))
        self._write(p, lambda p: renamed_into_place(p, text.encode("utf-8")))

    def finish(self, report: Report) -> None:
        """The run's checks compacted into checks.parquet, then the final report.json (once)."""
        from harness.report.check_parts import CHECKS_FILE
        from harness.report.checks_table import compact

        self._write(self.path / CHECKS_FILE, lambda p: compact(self.path, [c.id for c in report.cases]))
        self._write(self.path / "report.json", lambda p: report.write(self.path))

    def _write(self, p: Path, write) -> None:
        try:
            write(p)
        except OSError as exc:
            raise StorageError.of(exc, p) from None

    def close(self) -> None:
        """Stop writing: drop the lock (the .lock file stays, empty)."""
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)
            except OSError:
                pass
            self._lock_fd = None
