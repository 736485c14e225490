"""The stage-output cache: outputs by content hash, in memory and (optionally) on disk.

**Keys** (:func:`stage_key`) hash everything that can change a stage's output: the stage,
its backend config (name and parameters), the backend's identity
(:func:`harness.run.identity.stage_identity`: harness and library versions, the
backend module's source hash, a manifest hash of the weights it loads -- the files it
declares and its parameters that are paths, :func:`harness.run.identity.path_params`
-- the thread count and the device the backend runs on), the seed and the input image and
masks.  Editing a custom backend, replacing the content of a checkpoint it reads, or
running it on another device, is a miss, never a stale hit.  Any other parameter is a
value: ``variant = "a"`` is the string "a" even beside a file named ``a``.

**Entries** are ``<key>.npz`` files holding the output image, mask and info plus the
sha256 of all of them (and of the key); a read re-computes it, and an entry that is torn,
garbled or does not match is deleted and recomputed, never trusted.  Writes are atomic
(:func:`harness.fsio.atomic_write_bytes`): two processes writing one key both leave a
valid entry (the last rename wins; both hold the same output).

**Size**: after a write that takes the folder over ``max_bytes``, the least recently used
entries (by mtime: a hit touches its entry) are deleted until it is under 90 % of it.  The
in-memory layer is bounded too (``memory_bytes``).  A full disk stops disk caching with one
warning instead of failing cases.

**Images** of a run (what a case shows, :mod:`harness.run.store`) are not kept here: entries hold
the exact float arrays the next stage consumes, the store holds their 8-bit PNGs for people and
baselines, so they are different bytes and neither duplicates the other.  The cache only carries
the run's :class:`~harness.run.store.ImageStore` (``images``) to the case execution, since every
execution has a cache and the worker builds one per process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StageCache", "content_hash", "stage_key", "DEFAULT_MAX_BYTES", "KEY_SCHEMA"]

# bump when what goes into a key changes meaning (3: the backend's real device; 4: only parameters
# declared as paths are hashed as files, not every string that happens to name one)
KEY_SCHEMA = "harness-stage-key/4"
DEFAULT_MAX_BYTES = 2048 * 2**20  # the project's `cache_max_mb` default
DEFAULT_MEMORY_BYTES = 512 * 2**20
_LOW_WATER = 0.9  # eviction goes down to this fraction of the bound, so not every write rescans
_RESCAN_EVERY = 64  # writes between two scans of the folder (other processes write too)
_STALE_TMP_S = 3600  # a temporary file this old is a crashed writer's leftover


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


def stage_key(stage: str, bconf: dict[str, Any], backend: Any, *inputs: Any) -> str:
    """The cache key of running ``backend`` (whose config is ``bconf``) on ``inputs``.

    Computing it may reload a custom backend's module that changed on disk and rebuild
    ``backend`` in place (same parameters), so that what runs is what the key names."""
    from harness.run.identity import stage_identity

    return content_hash(KEY_SCHEMA, stage, bconf, stage_identity(backend), *inputs)


def _payload_digest(key: str, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(key.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _decode_entry(key: str, data: bytes) -> Entry:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    stored = str(arrays.pop("sha256"))
    if stored != _payload_digest(key, arrays):
        raise ValueError("checksum mismatch")
    info = json.loads(str(arrays["info"]))
    if not isinstance(info, dict):
        raise ValueError("info is not an object")
    return arrays.get("image"), arrays.get("mask"), info


def touch(p: Path) -> None:
    """Mark the entry ``p`` used now: the size bound evicts by mtime (least recently used first)."""
    try:
        os.utime(p)
    except OSError:
        pass


def read_entry(p: Path, decode):
    """The cache entry at ``p`` decoded by ``decode(bytes)``, or None: missing or unreadable, or
    damaged (``decode`` raised: torn, garbled or tampered; deleted, never trusted).  Not touched:
    the caller marks it used once it is sure to use it."""
    try:
        st = p.stat()
        data = p.read_bytes()
    except OSError:
        return None
    try:
        return decode(data)
    except Exception:  # noqa: BLE001 - BadZipFile, zlib.error, EOFError, a checksum mismatch...
        discard(p, st)
        return None


def discard(p: Path, st: os.stat_result) -> None:
    """Delete the invalid entry ``p`` (``st``: its stat when read) unless another process has
    just renamed a valid one over it."""
    try:
        if p.stat().st_ino == st.st_ino:
            p.unlink()
    except OSError:
        pass


def evict_lru(directory: Path | None, entries: list[tuple[int, str, int]], total: int, max_bytes: int,
              suffix: str) -> tuple[list[str], int]:
    """Delete the oldest of ``entries`` (``(mtime_ns, file name, size)`` in ``directory``, which
    take ``total`` bytes) while ``total`` is over ``max_bytes``, down to 90 % of it; the keys
    deleted (names less ``suffix``) and the bytes left.  Shared by the stage and measurement caches."""
    gone: list[str] = []
    if directory is None or total <= max_bytes:
        return gone, total
    target = int(max_bytes * _LOW_WATER)
    for _, name, size in sorted(entries):
        if total <= target:
            break
        try:
            os.unlink(directory / name)
        except FileNotFoundError:
            pass  # another process evicted it
        except OSError:
            continue
        total -= size
        gone.append(name[:-len(suffix)])
    return gone, total


Entry = tuple  # (image | None, mask | None, info dict)


def _nbytes(entry: Entry) -> int:
    return sum(a.nbytes for a in entry[:2] if isinstance(a, np.ndarray)) + 256


class StageCache:
    """Stage outputs by content hash: in memory, and on disk when ``directory`` is set.

    ``max_bytes`` bounds the folder (default :data:`DEFAULT_MAX_BYTES`), ``memory_bytes``
    the in-memory layer.  ``hits`` and ``misses`` count :meth:`get` answers.  ``images``: the
    run's image store, where a case puts its stage images (None: they are written into the run
    folder, as older runs did)."""

    def __init__(self, directory: Path | None, max_bytes: int | None = None, *,
                 memory_bytes: int | None = None, images: Any = None) -> None:
        self.directory = Path(directory) if directory else None
        self.images = images
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
        self.memory_bytes = min(self.max_bytes, DEFAULT_MEMORY_BYTES) if memory_bytes is None else int(memory_bytes)
        self._mem: OrderedDict[str, Entry] = OrderedDict()
        self._mem_size = 0
        self._disk_size: int | None = None  # estimate, refreshed by _scan
        self._writes_since_scan = 0
        self.hits = 0
        self.misses = 0

    def path_for(self, key: str) -> Path | None:
        return self.directory / f"{key}.npz" if self.directory is not None else None

    # ------------------------------------------------------------------ reading

    def get(self, key: str):
        """``(image, mask, info)`` stored for ``key``, or ``None`` (a miss)."""
        entry = self._mem.get(key)
        if entry is not None:
            self._mem.move_to_end(key)
            if self.directory is not None:
                touch(self.path_for(key))  # least recently *used*: a hit keeps its entry
        elif self.directory is not None:
            entry = self._load(key)
            if entry is not None:
                self._remember(key, entry)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
        return entry

    def _load(self, key: str) -> Entry | None:
        p = self.directory / f"{key}.npz"
        entry = read_entry(p, lambda data: _decode_entry(key, data))  # a damaged one is recomputed, never trusted
        if entry is not None:
            touch(p)
        return entry

    # ------------------------------------------------------------------ writing

    def _remember(self, key: str, entry: Entry) -> None:
        old = self._mem.pop(key, None)
        if old is not None:
            self._mem_size -= _nbytes(old)
        self._mem[key] = entry
        self._mem_size += _nbytes(entry)
        while self._mem_size > self.memory_bytes and len(self._mem) > 1:
            _, dropped = self._mem.popitem(last=False)
            self._mem_size -= _nbytes(dropped)

    def put(self, key: str, image: np.ndarray | None, mask: np.ndarray | None, info: dict) -> None:
        self._remember(key, (image, mask, info))
        if self.directory is None:
            return
        from harness.fsio import atomic_write_bytes

        arrays: dict[str, np.ndarray] = {"info": np.array(json.dumps(info, default=str))}
        if image is not None:
            arrays["image"] = np.asarray(image)
        if mask is not None:
            arrays["mask"] = np.asarray(mask)
        arrays["sha256"] = np.array(_payload_digest(key, arrays))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        data = buf.getvalue()
        try:
            atomic_write_bytes(self.directory / f"{key}.npz", data)
        except OSError as exc:  # a full disk must not fail the case: warn once, stop caching to disk
            print(f"harness: warning: stage cache {self.directory} not written ({exc}); continuing without it",
                  file=sys.stderr)
            self.directory = None
            return
        self._account(len(data))

    # ------------------------------------------------------------------ the size bound

    def _account(self, written: int) -> None:
        self._writes_since_scan += 1
        if self._disk_size is not None:
            self._disk_size += written
        if self._disk_size is None or self._disk_size > self.max_bytes or self._writes_since_scan >= _RESCAN_EVERY:
            self.evict()

    def disk_usage(self) -> int:
        """Bytes of entries (and young temporary files) in the folder now."""
        entries, tmp = self._scan()
        return sum(size for _, _, size in entries) + tmp

    def _scan(self) -> tuple[list[tuple[int, str, int]], int]:
        """``([(mtime_ns, name, size) of entries], bytes of in-flight temporary files)``."""
        entries: list[tuple[int, str, int]] = []
        tmp = 0
        if self.directory is None:
            return entries, tmp
        now = time.time()
        try:
            it = list(os.scandir(self.directory))
        except OSError:
            return entries, tmp
        for de in it:
            name = de.name
            try:
                if not de.is_file(follow_symlinks=False):
                    continue
                st = de.stat(follow_symlinks=False)
            except OSError:
                continue
            if name.endswith(".npz") and not name.startswith("."):
                entries.append((st.st_mtime_ns, name, st.st_size))
            elif name.startswith(".") and name.endswith(".tmp"):
                if now - st.st_mtime > _STALE_TMP_S:
                    try:
                        os.unlink(de.path)
                    except OSError:
                        pass
                else:
                    tmp += st.st_size
        return entries, tmp

    def evict(self) -> list[str]:
        """Delete least recently used entries while the folder is over ``max_bytes`` (down to
        90 % of it); returns the keys deleted."""
        entries, tmp = self._scan()
        total = tmp + sum(size for _, _, size in entries)
        gone, total = evict_lru(self.directory, entries, total, self.max_bytes, ".npz")
        self._disk_size = total
        self._writes_since_scan = 0
        return gone
