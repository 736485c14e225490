"""Batched seeds in the runner: render a chunk of a case's seeds in one call, cache each one-by-one.

A suite's ``batch_seeds = N`` (> 1) lets a generate backend that has a batch method
(:func:`harness.stages.base.batch_call`: ``call_batch`` or ``generate_batch``) render the
seeds of a vector+pipeline ``N`` at a time.  The run's planned seeds (the suite's, or ``--seeds``)
are cut into consecutive chunks of ``N``; the first case of a chunk to miss the stage cache
renders every seed of its chunk that is not cached yet, in one call, and stores each seed's
result under **exactly the key a one-by-one run would use**; the chunk's other cases then hit.

That is only honest because a batch method's results are bit-identical to one-by-one calls (the
protocol's contract; the diffusers backends are made batch-invariant for it).  The runner does not
take it on trust: the first batch of each (backend config, input shape, batch size) in a process is
spot-checked -- the case's own seed (first in the batch) is rendered alone as well, and a single
differing pixel refuses batching for that backend config and input shape, at any batch size, in
this process (the case's config says so
under ``batch.refused``; every case then runs one-by-one).  A suite's ``rerun_check`` re-renders
each case one-by-one without the cache, so it checks every batched result.

All or nothing: a batch that raises (NaN latents, a bad output for one seed) caches nothing, and
the case runs its own seed alone, so its error is exactly the one-by-one error.  With a disk cache
the chunk is rendered under a file lock (``.batch-<hash>.lock`` in the cache folder): a second
worker of a process pool waits for it and then hits instead of rendering the chunk again.  With a
memory-only cache (``--no-cache``) the runner batches only with one worker: workers that share no
cache would each render whole chunks.  A chunk is cut from the planned seeds, whatever ``-k``
selects: a selection that leaves out some seeds of a chunk still renders (and caches) them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np

from harness.run.cache import StageCache, content_hash

__all__ = ["cached_stage", "chunk_of", "reset_spot_checks"]

_CHECKED: set[str] = set()  # (backend config, input shape, batch size) spot-checked identical in this process
_REFUSED: dict[str, str] = {}  # (backend config, input shape) -> why batching is refused in this process


def reset_spot_checks() -> None:
    _CHECKED.clear()
    _REFUSED.clear()


def chunk_of(seed: int, seeds: Sequence[int], size: int) -> list[int]:
    """The consecutive chunk of ``size`` of the planned ``seeds`` that holds ``seed`` (``[seed]`` when
    it is not planned or ``size`` <= 1)."""
    planned = list(dict.fromkeys(int(s) for s in seeds))
    if size <= 1 or seed not in planned:
        return [seed]
    start = planned.index(seed) // size * size
    return planned[start:start + size]


def cached_stage(stage: str, backend: Any, bconf: dict[str, Any], cache: StageCache, seed: int,
                 chunk: Sequence[int], key_of: Callable[[int], str], image: np.ndarray,
                 ctx_of: Callable[[int], Any], config: dict[str, Any], run_alone: Callable[[], Any]):
    """The ``(image, mask, info)`` of ``stage`` for ``seed``: from the cache, else rendered with the
    not-yet-cached seeds of ``chunk`` in one batch call (see the module docstring), else alone.

    ``key_of(s)``: seed ``s``'s cache key (the one-by-one key); ``ctx_of(s)``: its StageContext;
    ``run_alone()``: the validated one-by-one result for ``seed`` (what a run without batching
    calls).  Sets ``config["cache"][stage]`` and, when a batch was involved, ``config["batch"]``."""
    from harness.stages.base import batch_call

    key = key_of(seed)
    hit = cache.get(key)
    if hit is None and len(chunk) > 1 and batch_call(backend) is not None:
        with _chunk_lock(cache, key_of(chunk[0]), chunk):
            hit = cache.get(key)  # another worker may have rendered the chunk while this one waited
            if hit is None:
                hit = _render_chunk(stage, backend, bconf, cache, seed, chunk, key_of, image, ctx_of, config)
            else:
                config.setdefault("cache", {})[stage] = "hit"
    elif hit is not None:
        config.setdefault("cache", {})[stage] = "hit"
    if hit is None:
        config.setdefault("cache", {})[stage] = "miss"
        result = run_alone()
        hit = (result.image, result.mask, dict(result.info))
        cache.put(key, *hit)
    batch = hit[2].get("batch")
    if isinstance(batch, dict):
        config["batch"] = {**config.get("batch", {}), **batch}
    return hit


def _chunk_lock(cache: StageCache, first_key: str, chunk: Sequence[int]):
    """A file lock for rendering ``chunk`` with a disk cache (none with a memory-only or unwritable one)."""
    if cache.directory is None:
        return nullcontext()
    from harness.fsio import file_lock

    try:
        cache.directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return nullcontext()  # duplicate work at worst: every entry holds the same bits
    return file_lock(cache.directory / f".batch-{content_hash(first_key, list(chunk))[:24]}.lock")


def _render_chunk(stage, backend, bconf, cache, seed, chunk, key_of, image, ctx_of, config):
    """Render ``seed`` and the chunk's uncached seeds in one call; put each; return ``seed``'s entry
    (None when batching was refused or failed: the caller renders ``seed`` alone)."""
    from harness.run.rerun import differing_px
    from harness.stages.base import run_stage, run_stage_batch

    todo = [seed] + [s for s in chunk if s != seed and cache.get(key_of(s)) is None]
    if len(todo) == 1:
        return None
    combo = content_hash("batch-spot-check", stage, bconf, type(backend).__module__, image.shape)
    check = content_hash(combo, len(todo))
    if combo in _REFUSED:
        config["batch"] = {"refused": _REFUSED[combo]}
        return None
    config.setdefault("cache", {})[stage] = "miss"
    t0 = time.perf_counter()
    try:
        results = run_stage_batch(backend, [image] * len(todo), [ctx_of(s) for s in todo])
    except Exception as exc:  # noqa: BLE001 - the seed runs alone; its own error is the case's error
        config["batch"] = {"size": len(todo), "seeds": todo, "fallback": f"{type(exc).__name__}: {exc}"}
        return None
    seconds = time.perf_counter() - t0
    if check not in _CHECKED:
        alone = run_stage(backend, image, ctx_of(seed))
        px = differing_px(alone.image, results[0].image)[0] + differing_px(alone.mask, results[0].mask)[0]
        if px == 0:
            _CHECKED.add(check)
        else:
            _REFUSED[combo] = (f"a batch of {len(todo)} gave seed {seed} {px} px other than a one-by-one call: "
                               f"this process renders {stage} with this config one seed at a time")
            config["batch"] = {"refused": _REFUSED[combo]}
            entry = (alone.image, alone.mask, dict(alone.info))
            cache.put(key_of(seed), *entry)
            return entry
    info = {"size": len(todo), "seeds": todo, "seconds": round(seconds, 4)}
    out = None
    for s, r in zip(todo, results):
        entry = (r.image, r.mask, {**r.info, "batch": {**info, "index": todo.index(s)}})
        cache.put(key_of(s), *entry)
        if s == seed:
            out = entry
    return out
