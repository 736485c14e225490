"""What a stage's output depends on besides its inputs: code, weights, versions, threads.

:func:`stage_identity` is hashed into every stage-cache key (see
:func:`harness.run.cache.stage_key`), so a cached output is served only when the same
code, weights and environment would compute it again.  Its ingredients:

* ``harness`` and ``versions``: the installed version of harness and of the libraries the
  backends use (:func:`harness.run.environment.package_versions`), and Python's;
* ``code``: the sha256 of the source file of the backend's module -- for a class backend
  the module defining the class, for a function backend the module defining the function,
  plus the module named in ``"module:attr"`` (or by an entry point) when that differs.
  Only those files are hashed: a helper module they import is *not* covered (change
  the backend module, or bump a parameter, when a helper changes).  For the built-in
  backends, whose helpers live all over the package (ncnn tiling, batch invariance,
  checkpoint loading), ``harness_code`` is the digest of every ``.py`` file of the
  installed harness package, taken once per process (an editable install being edited
  is covered, not only version bumps);
* ``weights``: a manifest hash of every file a backend loads -- relative path, size and
  sha256 of each file, never the path it lives at -- for the paths the backend declares
  (a ``weight_paths(self) -> list[Path]`` method: rapidocr's ONNX model, Real-ESRGAN's
  .param/.bin, tiny_diffusion's ``model_path``) and for the parameters that are paths
  (:mod:`harness.stages.paths`: declared by ``path_field()``, named ``*_path`` /
  ``*_dir`` / ``*_file`` / ``path`` / ``weights`` / ``checkpoint``, or annotated as a
  ``Path``), relative to the working directory; a non-empty one that names nothing is keyed
  as ``"missing"``.  Only those: a string that merely happens to name a file
  (``variant = "a"`` beside a file ``a``) is a plain value, hashed as the config;
* ``threads`` and ``device``: the configured thread count
  (:func:`~harness.threads.configured_threads`) and the device the backend runs
  on (:func:`~harness.run.environment.backend_device`: its ``run_device()``, e.g. a
  diffusers backend's ``device`` with ``auto`` resolved, else "cpu"), so an output computed
  on cuda is never served to a cpu run, nor the other way round.

The parameters and inputs are hashed by the caller (the backend config, the seed, the
images and masks).

:func:`measure_identity` is the same for ``measure`` (the measurement cache,
:mod:`harness.run.measure_cache`): the digest of ``harness/measuring`` and the ground-floor
modules, the numeric libraries' versions, Python, the machine and the thread count.

**Cheap.**  A file's sha256 is computed once per process and kept by its (device, inode,
size, mtime, ctime) signature; later cases cost one ``stat`` per file.  The driver's case memo
(:mod:`harness.run.case_memo`) keeps them across processes too (:mod:`harness.run.digest_memo`),
under the same signature rule.  A file modified
less than :data:`RACY_SECONDS` ago is re-hashed on every use (its timestamp may not yet
tell two writes apart: git's "racily clean" rule).

**What runs is what is keyed.**  A custom backend's module that changed on disk since it
was imported in this process (a long-lived worker, a notebook, a test) is reloaded
(:func:`importlib.reload`) and the backend rebuilt from its config, in place, before the
key is computed: the edited code runs, not the cached module.  The first time a module is
seen it is taken as loaded from what is on disk then.  Built-in modules are never
reloaded: their key holds the hash of the source as first seen, i.e. what was loaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from harness.errors import ConfigError, StageError

__all__ = ["stage_identity", "measure_identity", "file_digest", "manifest_digest", "DIGESTS", "code_modules",
           "refresh_backend", "is_builtin", "STATS", "RACY_SECONDS", "MAX_TREE_FILES"]

RACY_SECONDS = 2.0  # a file modified this recently is re-hashed on every use
MAX_TREE_FILES = 10_000  # a path parameter naming a bigger directory is refused, not walked per case
_SKIP_DIRS = frozenset({"__pycache__", ".git"})
_CHUNK = 1 << 20

# Where the time goes (per process): read by tests and by whoever measures the key's cost.
STATS: dict[str, float] = {"files_hashed": 0, "bytes_hashed": 0, "hash_seconds": 0.0, "identity_calls": 0,
                           "identity_seconds": 0.0, "reloads": 0}

_DIGESTS: dict[str, tuple[tuple[int, ...], str]] = {}  # abspath -> (stat signature, sha256)
DIGESTS = _DIGESTS  # what harness.run.digest_memo saves and adopts
_LOADED: dict[str, tuple[int, str | None]] = {}  # module name -> (id(module), source sha256 as loaded)


# ----------------------------------------------------------------------------- files


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's content, computed once per process per (inode, size, mtime, ctime)."""
    p = os.path.abspath(os.fspath(path))
    st = os.stat(p)
    sig = _signature(st)
    hit = _DIGESTS.get(p)
    if hit is not None and hit[0] == sig:
        return hit[1]
    t0 = time.perf_counter()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    STATS["files_hashed"] += 1
    STATS["bytes_hashed"] += st.st_size
    STATS["hash_seconds"] += time.perf_counter() - t0
    racy = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9
    if not racy and _signature(os.stat(p)) == sig:  # unchanged while it was read
        _DIGESTS[p] = (sig, digest)
    else:
        _DIGESTS.pop(p, None)
    return digest


def manifest_digest(path: str | os.PathLike[str]) -> str:
    """A hash of what a file or a directory holds: per file its path relative to ``path``,
    its size and the sha256 of its content (never where ``path`` itself lives).

    Directories are walked in sorted order, following symbolic links to files (a Hugging
    Face snapshot links into its blob store) but skipping ``__pycache__`` and ``.git``."""
    root = Path(path)
    if root.is_file():
        entries = [["", root.stat().st_size, file_digest(root)]]
    elif root.is_dir():
        entries = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
            for name in sorted(files):
                f = Path(folder) / name
                if not f.is_file():  # a dangling link, a socket: not content
                    continue
                entries.append([f.relative_to(root).as_posix(), f.stat().st_size, file_digest(f)])
                if len(entries) > MAX_TREE_FILES:
                    raise ConfigError(f"{root}: more than {MAX_TREE_FILES} files; a backend's path parameter naming "
                                      f"a directory is hashed into the stage cache key, name the checkpoint folder")
    else:
        raise FileNotFoundError(f"no such file or directory: {root}")
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


# ----------------------------------------------------------------------------- code


def is_builtin(backend: Any) -> bool:
    """True for a backend of harness's own catalog (not ``module:attr``, not an entry point)."""
    from harness.stages.catalog import BUILTIN

    return getattr(backend, "name", None) in BUILTIN.get(getattr(backend, "stage", None), {})


def _code_object(backend: Any) -> Any:
    """The function of a function backend, else the backend's class."""
    from harness.stages.base import FunctionBackend

    return backend.fn if isinstance(backend, FunctionBackend) else type(backend)


def code_modules(backend: Any) -> list[str]:
    """The modules whose source identifies the backend's code: the one defining its class or
    function, then the one its name imports it from (``module:attr`` or an entry point's target)."""
    from harness.stages import catalog

    out: list[str] = []
    defining = getattr(_code_object(backend), "__module__", None)
    if defining:
        out.append(defining)
    name, stage = getattr(backend, "name", ""), getattr(backend, "stage", "")
    try:
        target = catalog.lookup(stage, name) or name
    except ConfigError:
        target = name
    named = target.partition(":")[0] if ":" in target else None
    if named and named not in out:
        out.append(named)
    return out


def _source_file(module: Any) -> str | None:
    try:
        f = inspect.getsourcefile(module)
    except TypeError:  # a built-in or extension module: its distribution's version identifies it
        return None
    return f if f and os.path.isfile(f) else None


def _module_digest(name: str) -> str | None:
    mod = sys.modules.get(name)
    if mod is None:
        return None
    f = _source_file(mod)
    return file_digest(f) if f else None


def _reload(name: str) -> None:
    mod = sys.modules[name]
    cached = getattr(mod, "__cached__", None)
    if cached:  # the .pyc is validated by the source's mtime in whole seconds and its size: never trust it here
        try:
            os.unlink(cached)
        except OSError:
            pass
    importlib.invalidate_caches()
    try:
        importlib.reload(mod)
    except Exception as exc:  # noqa: BLE001 - a broken edit is this case's error, never the old code
        raise StageError(f"backend module {name!r} changed on disk and cannot be reloaded: "
                         f"{type(exc).__name__}: {exc}") from exc
    STATS["reloads"] += 1


def refresh_backend(backend: Any) -> dict[str, str | None]:
    """Make sure ``backend`` runs the code that is on disk now; return ``{module: sha256}`` of it.

    A custom backend whose module changed since it was loaded in this process is reloaded
    and ``backend`` rebuilt in place from its config.  Built-in modules are never
    reloaded: their digest is the one recorded when first seen (what was loaded)."""
    builtin = is_builtin(backend)
    digests: dict[str, str | None] = {}
    stale: list[str] = []
    for name in code_modules(backend):
        mod = sys.modules.get(name)
        if mod is None:
            digests[name] = None
            continue
        seen = _LOADED.get(name)
        if seen is None or seen[0] != id(mod):
            seen = _LOADED[name] = (id(mod), _module_digest(name))
        if builtin:
            digests[name] = seen[1]
            continue
        now = _module_digest(name)
        if now != seen[1]:
            stale.append(name)
        digests[name] = now
    if stale:  # reload every module of the backend, defining one first: a re-export picks up the new object
        for name in digests:
            if name in sys.modules:
                _reload(name)
                _LOADED[name] = (id(sys.modules[name]), digests[name])
        _rebuild(backend)
    return digests


def _rebuild(backend: Any) -> None:
    from harness.stages.base import backend_config, build_backend

    conf = backend_config(backend)
    fresh = build_backend(conf["stage"], conf["backend"], conf["params"])
    try:
        if type(fresh) is not type(backend):
            backend.__class__ = type(fresh)
        backend.__dict__.clear()
        backend.__dict__.update(fresh.__dict__)
    except (TypeError, AttributeError) as exc:
        raise StageError(f"{conf['stage']} backend {conf['backend']!r}: its module changed on disk and the "
                         f"loaded backend cannot be replaced ({exc}); restart the process") from exc


# ----------------------------------------------------------------------------- weights


def _path_like(value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, (str, os.PathLike)):
        yield "", os.fspath(value)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if isinstance(v, (str, os.PathLike)):
                yield f"[{i}]", os.fspath(v)


def _exists(s: str) -> bool:
    if not s or "\n" in s or len(s) > 4096:
        return False
    try:
        return os.path.exists(s)
    except (OSError, ValueError):
        return False


def _weights(backend: Any, params: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    seen: set[str] = set()

    def add(label: str, path: str | os.PathLike[str]) -> None:
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        out[label] = manifest_digest(path) if os.path.exists(path) else "missing"

    from harness.stages.paths import path_params

    declared = getattr(backend, "weight_paths", None)
    if callable(declared):
        for i, p in enumerate(declared()):
            add(f"declared[{i}]", p)
    for name in path_params(backend):
        for suffix, s in _path_like(params.get(name)):
            if not s:  # "" is the usual "none given" default (model_path = "": the packaged weights)
                continue
            if _exists(s):
                add(f"param.{name}{suffix}", s)
            else:
                out[f"param.{name}{suffix}"] = "missing"
    return out


# ----------------------------------------------------------------------------- the identity


@functools.lru_cache(maxsize=1)
def harness_code_digest() -> str:
    """sha256 over (relative path, sha256) of every ``.py`` file of the harness package, once per process."""
    # the top package, already imported (it is the parent of this module): importing it here
    # would make the run layer depend on the public facade above it
    root = Path(sys.modules[__name__.partition(".")[0]].__file__).resolve().parent
    entries = sorted((f.relative_to(root).as_posix(), file_digest(f)) for f in root.rglob("*.py"))
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


_MEASURE_PACKAGES = ("numpy", "scipy", "numba", "llvmlite", "scikit-image", "pillow", "opencv-python-headless")


@functools.lru_cache(maxsize=1)
def measuring_code_digest() -> str:
    """sha256 over (relative path, sha256) of the measuring code, once per process (what was loaded):
    every ``.py`` file of ``harness/measuring`` and the ground-floor modules ``harness/*.py`` it may use."""
    root = Path(sys.modules[__name__.partition(".")[0]].__file__).resolve().parent
    files = sorted(root.glob("*.py")) + sorted((root / "measuring").rglob("*.py"))
    entries = [(f.relative_to(root).as_posix(), file_digest(f)) for f in files]
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _measure_versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    out = []
    for pkg in _MEASURE_PACKAGES:
        try:
            out.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            out.append((pkg, "absent"))
    return tuple(out)


def measure_identity() -> dict[str, Any]:
    """What besides its inputs decides a measurement (:mod:`harness.run.measure_cache`'s key): the
    measuring code, the numeric libraries' versions, Python, the machine (the numba kernels are
    compiled for it, with ``fastmath``) and the thread count."""
    from harness.threads import configured_threads

    return {"code": measuring_code_digest(), "versions": dict(_measure_versions()),
            "python": platform.python_version(), "machine": platform.machine(), "threads": configured_threads()}


def _harness_version() -> str:
    from harness.run.environment import package_versions

    return package_versions().get("harness", "unknown")


def stage_identity(backend: Any) -> dict[str, Any]:
    """Everything besides parameters and inputs that decides ``backend``'s output (see the module
    docstring).  Refreshes a custom backend whose module changed on disk first."""
    from harness.run.environment import backend_device, package_versions
    from harness.threads import configured_threads
    from harness.stages.base import backend_config

    t0 = time.perf_counter()
    code = refresh_backend(backend)
    ident = {
        "harness": _harness_version(),
        "versions": package_versions(),
        "python": platform.python_version(),
        "builtin": is_builtin(backend),
        "code": code,
        "harness_code": harness_code_digest() if is_builtin(backend) else None,
        "weights": _weights(backend, backend_config(backend)["params"]),
        "threads": configured_threads(),
        "device": backend_device(backend),
    }
    STATS["identity_calls"] += 1
    STATS["identity_seconds"] += time.perf_counter() - t0
    return ident
