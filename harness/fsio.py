"""Writing files so that nothing is lost or torn: every harness write goes through here.

A write goes to a temporary file in the destination's folder, is written with ``os.write``,
fsync'ed, then renamed over the destination (atomic on POSIX), so a reader sees the old file
or the new one, never half of either.  A failed write removes its temporary file; a killed
process leaves at most a ``.<name>.XXXXXXXX.tmp`` file behind, which :func:`is_temp_name`
recognises and :func:`remove_temp_files` cleans up (call it only where no other process may
be writing, e.g. under :func:`file_lock`).

An error names the destination: an ``OSError`` raised while writing (a full disk, a
read-only file system) carries ``filename=<destination>``, so the CLI's one-line message
says which file could not be written.

:func:`file_lock` is an exclusive lock between processes (``fcntl.flock``).  It is
*advisory* (only code that takes the same lock is kept out: an editor, ``git checkout`` or
an older harness is not) and reliable only on a local file system (on NFS and other network
file systems ``flock`` may be emulated or ignored).
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "LockTimeout",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_lock",
    "fsync_dir",
    "is_temp_name",
    "remove_temp_files",
]

# tempfile.mkstemp's names: prefix + 8 characters of [a-z0-9_] + suffix
_TEMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory + rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)  # its own error names the folder that cannot be made
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
        tmp = None
    except OSError as exc:
        _discard(tmp)
        if exc.errno is not None and exc.filename != str(p):
            raise _naming(exc, p) from exc
        raise
    except BaseException:
        _discard(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _discard(tmp: str | None) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _naming(exc: OSError, path: Path) -> OSError:
    """The same kind of error, naming the destination instead of a temporary file (or nothing)."""
    try:
        return type(exc)(exc.errno, exc.strerror or os.strerror(exc.errno or 0), str(path))
    except TypeError:  # an OSError subclass with its own constructor
        return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the renames in folder ``path`` durable (a no-op where folders cannot be fsync'ed)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file of :func:`atomic_write_bytes` (``.<name>.XXXXXXXX.tmp``)."""
    return bool(_TEMP_RE.match(name))


def remove_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that killed writers left under ``folder``; returns them.

    Only safe where nobody is writing there now (hold the folder's :func:`file_lock`)."""
    removed = []
    for dirpath, _dirs, names in os.walk(folder):
        for name in sorted(names):
            if is_temp_name(name):
                p = Path(dirpath) / name
                try:
                    p.unlink()
                except FileNotFoundError:
                    continue
                removed.append(p)
    return sorted(removed)


class LockTimeout(OSError):
    """:func:`file_lock` waited ``timeout`` seconds and the lock stayed taken."""


@contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float | None = None,
              on_wait: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold an exclusive ``fcntl.flock`` on the file ``path`` (created if missing) for the ``with`` block.

    Advisory and local-file-system only (see the module doc).  The lock file holds the
    holder's pid (for the message of a waiting process) and is deleted on release, so no
    lock file stays behind in a folder kept in git; a waiter that then finds its file
    unlinked or replaced takes the lock again on the new one.  ``on_wait(message)`` is
    called once when another process holds the lock; ``timeout`` (seconds) raises
    :class:`LockTimeout` instead of waiting for ever.
    """
    import fcntl

    p = Path(path)
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not told:
                    holder = _read_holder(fd)
                    on_wait(f"waiting for the lock {p}" + (f" (held by process {holder})" if holder else ""))
                    told = True
                _wait(fd, deadline, p)
            st = os.fstat(fd)
            try:
                now = os.stat(p)
            except FileNotFoundError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                os.close(fd)  # the holder deleted this file as it let go: lock the new one
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only a courtesy for waiters
        yield p
    finally:
        try:
            os.unlink(p)  # still holding the lock: nobody can have locked this file meanwhile
        except OSError:
            pass
        os.close(fd)


def _wait(fd: int, deadline: float | None, p: Path) -> None:
    import fcntl

    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(errno.EAGAIN, "another process holds the lock", str(p)) from None
            time.sleep(0.05)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
