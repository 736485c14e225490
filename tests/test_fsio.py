"""harness.fsio: atomic writes that name the path when the file system refuses, temp-file
cleanup, and the advisory folder lock that bakes share."""

import errno
import multiprocessing
import os
import threading
import time

import pytest

from harness import fsio
from harness.fsio import (
    LockTimeout,
    atomic_write_bytes,
    atomic_write_text,
    file_lock,
    is_temp_name,
    remove_temp_files,
)

FORK = multiprocessing.get_context("fork")


def temps(folder):
    return sorted(p.name for p in folder.iterdir() if is_temp_name(p.name))


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_text(p, "one")
    atomic_write_bytes(p, b"two" * 10000)
    assert p.read_bytes() == b"two" * 10000
    assert temps(p.parent) == []
    assert p.stat().st_mode & 0o777 == 0o666 & ~fsio._umask()


@pytest.mark.parametrize("where,err", [("write", errno.ENOSPC), ("replace", errno.EROFS), ("fsync", errno.EIO)])
def test_a_refused_write_names_the_destination_and_keeps_the_old_file(tmp_path, monkeypatch, where, err):
    p = tmp_path / "a.json"
    atomic_write_text(p, "old")

    def refuse(*a, **k):
        raise OSError(err, os.strerror(err))  # as the kernel says it: no file name

    with monkeypatch.context() as m:
        m.setattr(fsio.os, where, refuse)
        with pytest.raises(OSError) as info:
            atomic_write_text(p, "new")
    assert info.value.errno == err and info.value.filename == str(p)
    assert p.read_text() == "old" and temps(tmp_path) == []


def test_a_folder_in_the_way_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError) as info:
        atomic_write_text(tmp_path / "file" / "a.json", "x")
    assert "file" in info.value.filename


def test_temp_names_and_their_cleanup(tmp_path):
    assert is_temp_name(".s1.json.ab_9xyz1.tmp")
    assert not any(is_temp_name(n) for n in ("s1.json", ".s1.json.tmp", "s1.json.ab_9xyz1.tmp", ".lock",
                                              ".s1.json.ABCDEFGH.tmp", "s1.json~"))
    (tmp_path / "v" / "p").mkdir(parents=True)
    left = [tmp_path / ".MANIFEST.json.k2j4h5g6.tmp", tmp_path / "v" / "p" / ".s1.json.q1w2e3r4.tmp"]
    for t in left:
        t.write_text("half")
    (tmp_path / "v" / "p" / "s1.json").write_text("{}")
    assert remove_temp_files(tmp_path) == sorted(left)
    assert not any(t.exists() for t in left) and (tmp_path / "v" / "p" / "s1.json").exists()


def _hold(lock, started, release):
    with file_lock(lock):
        started.set()
        release.wait(30)


def test_lock_excludes_other_processes_names_the_holder_and_leaves_no_file(tmp_path):
    lock = tmp_path / ".lock"
    started, release = FORK.Event(), FORK.Event()
    holder = FORK.Process(target=_hold, args=(lock, started, release))
    holder.start()
    try:
        assert started.wait(30)
        told = []
        t0 = time.monotonic()
        with pytest.raises(LockTimeout) as info, file_lock(lock, timeout=0.3, on_wait=told.append):
            pass
        assert time.monotonic() - t0 >= 0.3 and info.value.filename == str(lock)
        assert told == [f"waiting for the lock {lock} (held by process {holder.pid})"]
    finally:
        release.set()
        holder.join(30)
    with file_lock(lock, timeout=5):
        assert lock.exists()
    assert not lock.exists()  # released: nothing left in a folder kept in git


def _count(lock, counter, n, barrier):
    barrier.wait()
    for _ in range(n):
        with file_lock(lock):
            v = int(counter.read_text())
            time.sleep(0.0005)
            counter.write_text(str(v + 1))
    os._exit(0)


def test_lock_is_mutual_exclusion_while_its_file_comes_and_goes(tmp_path):
    """Read-modify-write of a counter under the lock by 4 processes: no increment lost, even
    though every release deletes the lock file that waiters hold open."""
    lock, counter = tmp_path / ".lock", tmp_path / "n"
    counter.write_text("0")
    barrier = FORK.Barrier(4)
    procs = [FORK.Process(target=_count, args=(lock, counter, 40, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert int(counter.read_text()) == 160 and not lock.exists()


def test_lock_between_threads_of_one_process(tmp_path):
    lock, order = tmp_path / ".lock", []

    def waiter():
        with file_lock(lock):
            order.append("waited")

    with file_lock(lock):
        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.2)
        order.append("released")
    t.join(10)
    assert order == ["released", "waited"]
