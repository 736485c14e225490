"""Caches of per-image-size arrays that a large image does not keep: :func:`per_size`.

The spectral weights (band filters, window, octave membership) are image-sized arrays cached
per ``(h, w)``, so measuring many images of one size computes them once.  For a large image
(over :func:`large_pixels` pixels) together they would outweigh the image several times over
and stay after the measurement; there each is computed when it is read and let go, except the
few that a :func:`size_scope` names, kept until the scope ends or :meth:`SizeScope.drop`
(the measurement of one large image, reading them several times).  The values are the same either way: the very same function runs.
"""

from __future__ import annotations

import functools
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["per_size", "large_pixels", "is_large", "size_scope", "LARGE_ENV", "DEFAULT_LARGE_PIXELS"]

DEFAULT_LARGE_PIXELS = 1 << 22  # 2048 x 2048: above it an image takes the low-memory path
LARGE_ENV = "HARNESS_LARGE_PIXELS"  # overrides the threshold (pixels; 0: every image is large)

_local = threading.local()  # each thread's scope: measurements in threads do not share one


def large_pixels() -> int:
    """Pixels above which an image is measured on the low-memory path (``$HARNESS_LARGE_PIXELS`` or
    :data:`DEFAULT_LARGE_PIXELS`; read on every call, so a test can force the path)."""
    value = os.environ.get(LARGE_ENV)
    if value is None or value == "":
        return DEFAULT_LARGE_PIXELS
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"${LARGE_ENV} must be a whole number of pixels, got {value!r}") from None
    if n < 0:
        raise ValueError(f"${LARGE_ENV} must be >= 0, got {n}")
    return n


def is_large(h: int, w: int) -> bool:
    """Whether an ``h x w`` image takes the low-memory path."""
    return h * w > large_pixels()


def per_size(maxsize: int) -> Callable[[Callable], Callable]:
    """``functools.lru_cache(maxsize)`` for a function of ``(h, w, *hashable)`` whose result is an
    image-sized array; for a large ``h x w`` the result is kept only in the active :func:`size_scope`."""

    def decorate(fn: Callable) -> Callable:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def wrapper(h: int, w: int, *rest: Any) -> Any:
            if not is_large(h, w):
                return cached(h, w, *rest)
            store = getattr(_local, "scope", None)
            if store is None or wrapper not in store["keep"]:
                return fn(h, w, *rest)
            key = (wrapper, h, w, *rest)
            if key not in store:
                store[key] = fn(h, w, *rest)
            return store[key]

        wrapper.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        wrapper.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return wrapper

    return decorate


class SizeScope:
    """The arrays a large image's measurement keeps while it runs (see :func:`size_scope`)."""

    def __init__(self, store: dict[tuple, Any]) -> None:
        self._store = store

    def drop(self, fn: Callable, *args: Any) -> None:
        """Forget ``fn(*args)`` (a :func:`per_size` function) and keep it no more: its last reader is done."""
        self._store.pop((fn, *args), None)
        self._store["keep"] = self._store["keep"] - {fn}


@contextmanager
def size_scope(*keep: Callable) -> Iterator[SizeScope]:
    """Keep the results of the :func:`per_size` functions ``keep`` for large images until the block
    ends, in this thread (an inner scope shares the outer one's store and adds its ``keep``)."""
    store = getattr(_local, "scope", None)
    if store is not None:
        store["keep"] = store["keep"] | set(keep)
        yield SizeScope(store)
        return
    _local.scope = store = {"keep": frozenset(keep)}
    try:
        yield SizeScope(store)
    finally:
        _local.scope = None
