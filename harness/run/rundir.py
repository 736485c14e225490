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
    cases/<slug>.json  one record per finished case ``{"case", "measurement"}``, atomic
    checks.csv         a header, then each finished case's rows appended in one write
    artifacts/<slug>/  stage PNGs (written by the workers)

``harness run`` makes its folder with :meth:`RunFolder.create`; a pytest session with
:meth:`RunFolder.claim` (the first of its processes to run an item of a suite creates the folder
and writes the header, the others find it by the session's token).

A case is recorded when its checks.csv rows and then its case file are written; when the case
file cannot be written the rows are cut off again, so checks.csv and cases/ always hold the same
cases (the processes of a pytest session record one case at a time, under an flock on
checks.csv).  Every ``OSError`` from writing comes out as a :class:`StorageError` naming the path.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from harness.errors import ConfigError
from harness.naming import case_slug

if TYPE_CHECKING:
    from harness.report.schema import CaseResult, Report

__all__ = ["RunFolder", "StorageError"]


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


class RunFolder:
    """One run's folder, held (locked) by this process from creation or reopening until :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None
        self._csv_fd: int | None = None

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
        one session never makes two.  The folder is held with a shared lock, its checks.csv open
        for appending.  Returns the folder and whether this process created it."""
        _make_root(root)
        mark = f"{token} {run_id}"  # one session may ask for "x" and "x-2" (two suites of one name)
        with _claiming(root):
            n = 1
            while True:
                path = root / _numbered(run_id, n)
                if path.is_dir() and _token(path) == mark:
                    return cls._joined(path), False
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
    def _joined(cls, path: Path) -> RunFolder:
        folder = cls.attach(path)
        p = path / "checks.csv"
        try:
            folder._csv_fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            folder.close()
            raise _refused(exc, p, "cannot write in the run folder") from None
        return folder

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
        """The header report.json (no cases, ``complete: false``) and checks.csv's header row."""
        from harness.report.schema import CSV_COLUMNS

        self._write(self.path / "cases", lambda p: p.mkdir(exist_ok=True))
        self._write(self.path / "report.json", lambda p: report.write(self.path))
        self._open_csv(",".join(CSV_COLUMNS) + "\n")

    def restart_csv(self, cases: Iterable[CaseResult]) -> None:
        """checks.csv rewritten from the case records (resume: drops rows a kill left half-recorded)."""
        from harness.report.schema import CSV_COLUMNS, checks_csv_rows

        self._open_csv(",".join(CSV_COLUMNS) + "\n" + "".join(checks_csv_rows(c) for c in cases))

    def _open_csv(self, text: str) -> None:
        from harness.fsio import atomic_write_text

        p = self.path / "checks.csv"
        self._write(p, lambda p: atomic_write_text(p, text))
        try:
            self._csv_fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise StorageError.of(exc, p) from None

    def add(self, case: CaseResult, measurement: dict[str, Any] | None) -> None:
        """Record one finished case: its checks.csv rows, then its case file (both or neither)."""
        import fcntl

        assert self._csv_fd is not None, "run folder not started"
        # the processes of a pytest session append to one checks.csv: one record at a time, so
        # that a cut after a failed write never takes another process's rows with it
        try:
            fcntl.flock(self._csv_fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock: unserialised, as harness run's single writer is
            pass
        try:
            self._record(case, measurement)
        finally:
            try:
                fcntl.flock(self._csv_fd, fcntl.LOCK_UN)
            except OSError:
                pass

    def _record(self, case: CaseResult, measurement: dict[str, Any] | None) -> None:
        from harness.fsio import atomic_write_text
        from harness.report.schema import checks_csv_rows

        csv_path = self.path / "checks.csv"
        size = None
        rows = checks_csv_rows(case).encode("utf-8")
        try:
            size = os.fstat(self._csv_fd).st_size
            view = memoryview(rows)
            while view:
                view = view[os.write(self._csv_fd, view):]
        except OSError as exc:
            self._cut_csv(size)
            raise StorageError.of(exc, csv_path) from None
        p = self.path / "cases" / f"{case_slug(case.id)}.json"
        from harness.report.schema import case_record_text

        doc = case_record_text(case, measurement, p)  # validated like report.json: the reader's schema
        try:
            atomic_write_text(p, doc)
        except OSError as exc:
            self._cut_csv(size)
            raise StorageError.of(exc, p) from None

    def _cut_csv(self, size: int | None) -> None:
        if size is None or self._csv_fd is None:
            return
        try:
            os.ftruncate(self._csv_fd, size)
        except OSError:
            pass

    def finish(self, report: Report) -> None:
        """The final report.json (once)."""
        self._write(self.path / "report.json", lambda p: report.write(self.path))

    def _write(self, p: Path, write) -> None:
        try:
            write(p)
        except OSError as exc:
            raise StorageError.of(exc, p) from None

    def close(self) -> None:
        """Stop writing: close checks.csv and drop the lock (the .lock file stays, empty)."""
        for attr in ("_csv_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, attr, None)
