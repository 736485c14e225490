"""Named registries for pluggable pieces (stage backends, metrics).

A registry maps a short name to an object.  Names are unique: registering a
name twice is an error rather than a silent override (pluggy's rule).  Besides
registered names, :meth:`Registry.resolve` accepts ``"package.module:attr"`` so
users can plug in their own backend without forking the project.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from harness.errors import ConfigError

T = TypeVar("T")

__all__ = ["Registry", "import_object"]


def import_object(spec: str) -> object:
    """Import ``"module:attr"`` (``attr`` may be dotted) and return the object."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{spec!r} is not of the form 'package.module:attr'")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import module {module_name!r} for {spec!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"module {module_name!r} has no attribute {attr!r} (from {spec!r})") from None
    return obj


class Registry(Generic[T]):
    """A name → object mapping that refuses duplicates and resolves ``module:attr``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted."""

        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def resolve(self, name: str) -> T:
        """Return the object registered as ``name``, or import it when ``name`` has a colon."""
        if name in self._items:
            return self._items[name]
        if ":" in name:
            return import_object(name)  # type: ignore[return-value]
        allowed = ", ".join(sorted(self._items)) or "(none)"
        raise ConfigError(f"unknown {self.kind} {name!r}; allowed: {allowed} or 'module:attr'")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
