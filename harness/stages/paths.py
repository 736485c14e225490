"""Which parameters of a backend are paths: their files' content is hashed into the stage cache
key (:mod:`harness.run.identity`); every other parameter is a plain value, even a string
that happens to name a file in the working directory (``variant = "a"`` beside a file ``a``).

A parameter is a path when

* its ``Params`` field says so in its metadata: ``model_path: str = path_field()``
  (``metadata={"path": True}``); ``metadata={"path": False}`` says it is not, whatever its
  name or type.  The built-in backends declare theirs this way; otherwise
* its name ends in ``_path``, ``_dir`` or ``_file``, or is ``path``, ``weights`` or
  ``checkpoint`` (:data:`PATH_SUFFIXES`, :data:`PATH_NAMES`), or
* it is annotated as a path: ``pathlib.Path``, ``os.PathLike``, ``str | Path``,
  ``list[Path]`` -- a ``Params`` field's type, or a function backend's parameter annotation.

The last two are how a custom function backend declares them::

    def my_denoise(image, ctx, *, model_dir="", strength=0.5): ...       # model_dir: a path
    def my_inpaint(image, ctx, *, weights: Path | None = None, mode="a"): # weights: a path
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import typing
from dataclasses import field
from pathlib import PurePath
from typing import Any

from harness.stages.base import FunctionBackend

__all__ = ["path_field", "path_params", "PATH_SUFFIXES", "PATH_NAMES"]

PATH_SUFFIXES = ("_path", "_dir", "_file")
PATH_NAMES = ("path", "weights", "checkpoint")


def path_field(default: str = ""):
    """A ``Params`` field naming a file or folder the backend reads (hashed into the cache key)."""
    return field(default=default, metadata={"path": True})


_PATH_TYPE = re.compile(r"\b(Path|PurePath|PathLike|PosixPath|WindowsPath)\b")


def _is_path_annotation(a: Any) -> bool:
    """``Path``, ``os.PathLike``, ``str | Path``, ``list[Path]`` (also as a string, postponed annotations)."""
    if a is None or a is inspect.Parameter.empty:
        return False
    if isinstance(a, str):
        return bool(_PATH_TYPE.search(a))
    if isinstance(a, type) and issubclass(a, (PurePath, os.PathLike)):
        return True
    return any(_is_path_annotation(x) for x in typing.get_args(a))


def _named_like_a_path(name: str) -> bool:
    return name in PATH_NAMES or name.endswith(PATH_SUFFIXES)


def path_params(backend: Any) -> tuple[str, ...]:
    """The names of ``backend``'s parameters that are paths (sorted; see the module docstring):
    a ``Params`` field's ``path`` metadata decides, else its name or its type; a function
    backend's parameter (or a ``**kwargs`` one it was given) by its name or its annotation."""
    out: set[str] = set()
    if isinstance(backend, FunctionBackend):
        try:
            sig = dict(inspect.signature(backend.fn).parameters)
        except (TypeError, ValueError):
            sig = {}
        for name in set(sig) | set(backend.params):
            if _named_like_a_path(name) or (name in sig and _is_path_annotation(sig[name].annotation)):
                out.add(name)
        return tuple(sorted(out))
    pcls = getattr(type(backend), "Params", None)
    if pcls is not None and dataclasses.is_dataclass(pcls):
        for f in dataclasses.fields(pcls):
            declared = f.metadata.get("path")
            if declared if declared is not None else (_named_like_a_path(f.name) or _is_path_annotation(f.type)):
                out.add(f.name)
    return tuple(sorted(out))
