"""The measurement cache: :func:`harness.measuring.driver.measure` results by content hash.

A case whose every stage comes from the stage cache (:mod:`harness.run.cache`) ends with the
same final image as last time; measuring it again (an FFT per band, tile and region sums,
about 0.1 s per 512² image) is then the largest cost left, so the measurement is cached too.

**Key** (:func:`measure_key`): sha256 of :data:`KEY_SCHEMA`, the image (shape, dtype and
bytes), the mask and the anchors given to ``measure`` (``None`` hashed as such), ``tile``,
``ring`` and :func:`harness.run.identity.measure_identity` (a digest of the measuring code,
the versions of the numeric libraries, Python, the machine and the thread count).  One pixel,
the tile size or an edit of a measuring module changes the key: a miss, never a stale hit.

**Entries** live beside the stage cache, in ``<cache dir>/measure/<key>.json.gz``: the
measurement as JSON (floats written with ``repr``, so they read back bit for bit), with the
sha256 of its key and text inside.  A read re-computes it; an entry that is torn, garbled
or does not match is deleted and measured again.  Writes are atomic.  A meta that JSON would
change (a tuple read back as a list) is not cached: a hit is the measurement itself.

The folder is bounded (beside a stage cache an eighth of its ``cache_max_mb``, else
:data:`DEFAULT_MAX_BYTES`; least recently used entries go first, by mtime: a hit touches its entry).  Without a cache directory the cache is in memory only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from harness.measuring.result import Measurement
from harness.run.cache import evict_lru, read_entry, touch

__all__ = ["MeasureCache", "measure_key", "cached_measure", "cache_beside", "KEY_SCHEMA", "DEFAULT_MAX_BYTES"]

KEY_SCHEMA = "harness-measure-key/1"  # bump when what goes into a key changes meaning
DEFAULT_MAX_BYTES = 512 * 2**20
_MEMORY_ENTRIES = 64  # measurements kept in memory per process (each a few hundred kB)
_RESCAN_EVERY = 64  # writes between two scans of the folder for the size bound
_SUFFIX = ".json.gz"
_SHARE = 8  # beside a stage cache, measurements may take an eighth of its bound (on top of it)


def _hash_array(h: Any, a: np.ndarray | None) -> None:
    if a is None:
        h.update(b"\0none")
        return
    a = np.ascontiguousarray(a)
    h.update(f"\0{a.shape}\0{a.dtype.str}\0".encode())
    h.update(memoryview(a).cast("B"))


def measure_key(image: np.ndarray, mask: np.ndarray | None, anchors: np.ndarray | None, tile: int | None,
                ring: int, identity: dict[str, Any] | None = None) -> str:
    """sha256 (hex) of everything that decides ``measure(image, mask, anchors=, tile=, ring=)``.

    ``identity``: the measuring code's (default :func:`harness.run.identity.measure_identity`)."""
    if identity is None:
        from harness.run.identity import measure_identity

        identity = measure_identity()
    h = hashlib.sha256(KEY_SCHEMA.encode())
    h.update(json.dumps([identity, tile, ring], sort_keys=True, default=str).encode())
    for a in (image, mask, anchors):
        _hash_array(h, None if a is None else np.asarray(a))
    return h.hexdigest()


def _encode(key: str, m: Measurement) -> bytes | None:
    """The entry's bytes; None when the measurement would not read back identical."""
    doc = {"meta": m.meta,
           "metrics": [[name, list(mv.slices), mv.values.tolist(), mv.std.tolist(), mv.bias.tolist()]
                       for name, mv in m.metrics.items()]}
    try:
        text = json.dumps(doc, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        return None
    if repr(json.loads(text)["meta"]) != repr(m.meta):  # a tuple, a numpy scalar: not what a hit would give
        return None
    digest = hashlib.sha256(f"{key}\0{text}".encode()).hexdigest()
    return zlib.compress(json.dumps({"key": key, "sha256": digest, "doc": text}).encode(), 1)


def _decode(key: str, data: bytes) -> Measurement:
    """The measurement of an entry; ValueError (or zlib/JSON errors) when it is not a valid one."""
    from harness.measuring.result import MetricValues

    outer = json.loads(zlib.decompress(data))
    text = outer["doc"]
    if outer.get("key") != key or outer.get("sha256") != hashlib.sha256(f"{key}\0{text}".encode()).hexdigest():
        raise ValueError("checksum mismatch")
    doc = json.loads(text)
    metrics = {name: MetricValues(tuple(slices), np.asarray(v, np.float64), np.asarray(s, np.float64),
                                  np.asarray(b, np.float64))
               for name, slices, v, s, b in doc["metrics"]}
    return Measurement(metrics, doc["meta"])


class MeasureCache:
    """Measurements by :func:`measure_key`: in memory, and under ``directory`` when given.

    ``hits`` and ``misses`` count :meth:`get` answers."""

    def __init__(self, directory: Path | None, max_bytes: int | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.max_bytes = DEFAULT_MAX_BYTES if max_bytes is None else int(max_bytes)
        self._mem: OrderedDict[str, Measurement] = OrderedDict()
        self._writes = 0
        self.hits = 0
        self.misses = 0

    def path_for(self, key: str) -> Path | None:
        return self.directory / f"{key}{_SUFFIX}" if self.directory is not None else None

    def get(self, key: str) -> Measurement | None:
        m = self._mem.get(key)
        if m is not None:
            self._mem.move_to_end(key)
        elif self.directory is not None:
            m = self._load(key)
            if m is not None:
                self._remember(key, m)
        if m is None:
            self.misses += 1
        else:
            self.hits += 1
        return m

    def _load(self, key: str) -> Measurement | None:
        p = self.path_for(key)
        m = read_entry(p, lambda data: _decode(key, data))  # a damaged one is measured again, never trusted
        if m is not None:
            touch(p)  # least recently *used*
        return m

    def _remember(self, key: str, m: Measurement) -> None:
        self._mem[key] = m
        self._mem.move_to_end(key)
        while len(self._mem) > _MEMORY_ENTRIES:
            self._mem.popitem(last=False)

    def put(self, key: str, m: Measurement) -> None:
        data = _encode(key, m)
        if data is None:
            return
        self._remember(key, m)
        if self.directory is None:
            return
        from harness.fsio import atomic_write_bytes

        try:
            atomic_write_bytes(self.path_for(key), data)
        except OSError as exc:  # a full disk must not fail the case: warn once, stop caching to disk
            print(f"harness: warning: measurement cache {self.directory} not written ({exc}); continuing "
                  f"without it", file=sys.stderr)
            self.directory = None
            return
        self._writes += 1
        if (self._writes - 1) % _RESCAN_EVERY == 0:  # the first write, then every _RESCAN_EVERY
            self.evict()

    def evict(self) -> list[str]:
        """Delete least recently used entries while the folder is over ``max_bytes`` (down to 90 %)."""
        if self.directory is None:
            return []
        entries = []
        try:
            for de in os.scandir(self.directory):
                if de.name.endswith(_SUFFIX) and not de.name.startswith("."):
                    st = de.stat(follow_symlinks=False)
                    entries.append((st.st_mtime_ns, de.name, st.st_size))
        except OSError:
            return []
        return evict_lru(self.directory, entries, sum(size for _, _, size in entries), self.max_bytes, _SUFFIX)[0]


_BESIDE: dict[str | None, MeasureCache] = {}  # one per stage-cache folder per process


def cache_beside(stage_cache: Any) -> MeasureCache:
    """The measurement cache of this process beside ``stage_cache`` (a
    :class:`~harness.run.cache.StageCache`): ``<its folder>/measure``, or memory only."""
    directory = getattr(stage_cache, "directory", None)
    where = str(Path(directory) / "measure") if directory is not None else None
    cache = _BESIDE.get(where)
    if cache is None:
        bound = getattr(stage_cache, "max_bytes", None)  # the project's cache_max_mb: an eighth of it
        cache = _BESIDE[where] = MeasureCache(Path(where) if where else None,
                                              None if bound is None else max(1, int(bound) // _SHARE))
    return cache


def cached_measure(cache: MeasureCache, image: np.ndarray, mask: np.ndarray | None, *,
                   anchors: np.ndarray | None, tile: int | None, ring: int) -> Measurement:
    """``measure(image, mask, anchors=anchors, tile=tile, ring=ring)``, from ``cache`` when it holds it."""
    from harness.measuring.driver import measure

    key = measure_key(image, mask, anchors, tile, ring)
    m = cache.get(key)
    if m is None:
        m = measure(image, mask, anchors=anchors, tile=tile, ring=ring)
        cache.put(key, m)
    return m
