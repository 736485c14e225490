"""Stage protocol, per-stage registries, parameter validation and output checks.

Every backend has the same call shape, ``backend(image, ctx) -> StageResult``,
and a frozen ``Params`` dataclass whose fields (with defaults) are its only
parameters.  :func:`build_backend` validates a parameter mapping against it;
:func:`backend_config` is recorded in every report so a run can be reproduced;
:func:`run_stage` is the one way to call a backend: it checks what came back.

Custom backends plug in by ``"package.module:attr"``: either a Backend class
(``Params`` dataclass, ``__init__(self, params)``, ``__call__(image, ctx)``) or
a plain function ``f(image, ctx, **params)`` returning an image (or, for the
detect/mask stages, an ``(H, W)`` mask) or a :class:`StageResult`.

Batches (optional): a backend may also answer many ``(image, ctx)`` pairs in one call,
``call_batch(self, images: Sequence[np.ndarray], ctxs: Sequence[StageContext]) -> list[StageResult]``
(the diffusers backends), or, for a generate backend whose input is the same placeholder for every
seed, ``generate_batch(self, image, ctxs) -> list[StageResult]`` (``face_gan``).  The contract:
result ``i`` is bit-identical to ``backend(images[i], ctxs[i])`` -- the runner stores it in the
stage cache under the key a one-by-one call would have, so anything less is a false cache hit.
:func:`batch_call` finds either method (one calling convention); :func:`run_stage_batch` calls it
and validates every result as :func:`run_stage` does.

Determinism: backends import OpenCV through :func:`harness.threads.cv2_module`, which pins
OpenCV to the configured thread count (the suite's ``threads``); onnxruntime,
ncnn and torch run with it too; anything random takes ``ctx.seed`` explicitly.  Nothing here imports
cv2, onnxruntime, ncnn or torch at module import time.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Protocol, Sequence

import numpy as np

from harness.imageio import float_to_uint8
from harness.errors import ConfigError, StageError
from harness.stages import catalog
from harness.stages.guide import Guide
from harness.registry import import_object
from harness.validate import ParamWhere, interval

__all__ = ["STAGES", "Guide", "StageContext", "StageResult", "Backend", "register", "spec", "build_backend", "resolve_backend",
           "backend_config", "run_stage", "validate_output", "FunctionBackend", "binary_mask",
           "BatchBackend", "batch_call", "run_stage_batch"]

STAGES = ("generate", "detect", "mask", "inpaint", "denoise", "upscale")
MASK_STAGES = ("detect", "mask")


@dataclass
class StageContext:
    """What a backend may read besides its input image."""

    seed: int
    mask: np.ndarray | None = None  # current soft mask, (H, W) float32 in [0, 1]
    truth_mask: np.ndarray | None = None  # the vector's exact overlay mask, (H, W) float32
    anchors: np.ndarray | None = None  # (H, W) bool: protected texture regions ("texture anchors")
    guide: Guide | None = None  # a full-resolution guide image for the upscale stage (backend "guided")
    prompt: str | None = None  # a prompt vector's text, for generate backends
    negative_prompt: str | None = None


@dataclass
class StageResult:
    image: np.ndarray | None  # (H, W, 3) uint8; None for detect / mask
    mask: np.ndarray | None = None  # (H, W) float32 in [0, 1] for detect / mask
    info: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable numbers / strings


class Backend(Protocol):
    stage: ClassVar[str]
    name: ClassVar[str]
    Params: ClassVar[type]
    params: Any

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult: ...


class BatchBackend(Backend, Protocol):
    """A backend that renders many samples in one call (see the module docstring)."""

    def call_batch(self, images: Sequence[np.ndarray], ctxs: Sequence[StageContext]) -> list[StageResult]: ...


class BackendBase:
    """Shared constructor: a backend holds its validated, frozen ``Params``."""

    def __init__(self, params: Any) -> None:
        self.params = params


def register(stage: str, name: str):
    """Class decorator: declare the stage and name of a backend class (no global side effect).

    Which name resolves to which class is decided by :mod:`harness.stages.catalog`
    (a static table for the built-ins, the ``harness.backends`` entry-point group for
    third-party packages); :func:`build_backend` checks that the two agree.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")

    def deco(cls):
        cls.stage, cls.name = stage, name
        return cls

    return deco


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Range:
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return "one of: " + ", ".join(map(str, self.choices))
        return interval(self.lo, self.hi)


def spec(default: Any, lo: float | None = None, hi: float | None = None, choices: tuple | None = None):
    """A Params field with a default and an allowed (inclusive) range or set of values."""
    return field(default=default, metadata={"range": _Range(lo, hi, choices)})


def _allowed(f: dataclasses.Field) -> str:
    r: _Range | None = f.metadata.get("range")
    kind = type(f.default)
    if kind is bool:
        return "true or false"
    if r is not None and r.choices is not None:
        return r.describe()
    name = {int: "an integer", float: "a number", str: "a string"}.get(kind, kind.__name__)
    return f"{name} {r.describe()}" if r is not None else name


def _read_param(w: ParamWhere, name: str, value: Any, f: dataclasses.Field) -> Any:
    """One parameter, read as the type of its default (ints also from whole floats, floats from ints)."""
    default, r = f.default, f.metadata.get("range") or _Range()
    if isinstance(default, bool):
        value = w.boolean(name, value)
    elif isinstance(default, int):
        value = w.integer(name, value, r.lo, r.hi, whole_floats=True)
    elif isinstance(default, float):
        value = w.number(name, value, r.lo, r.hi)
    elif isinstance(default, str):
        value = w.string(name, value, empty=True, multiline=True)
    elif r.lo is not None or r.hi is not None:
        w.number(name, value, r.lo, r.hi)
    if r.choices is not None:
        w.choice(name, value, r.choices)
    return value


def _check_params(label: str, cls: type, params: Mapping[str, Any]):
    """Validate ``params`` against the Params dataclass ``cls``; return an instance."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    where = ParamWhere(label)
    where.keys(params, tuple(fields), noun="parameter")
    return cls(**{name: _read_param(where.param(_allowed(fields[name])), name, value, fields[name])
                  for name, value in params.items()})


# ----------------------------------------------------------------------------- building


class FunctionBackend:
    """Adapts a plain function ``f(image, ctx, **params)`` to the Backend protocol."""

    def __init__(self, stage: str, name: str, fn: Callable, params: Mapping[str, Any]) -> None:
        self.stage, self.name, self.fn = stage, name, fn
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            ps = list(sig.parameters.values())
            accepts_kw = any(p.kind is p.VAR_KEYWORD for p in ps)
            allowed = [p.name for p in ps[2:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            unknown = [] if accepts_kw else sorted(set(params) - set(allowed))
            if unknown:
                raise ConfigError(f"{stage} backend {name!r}: unknown parameter {unknown[0]!r}; "
                                  f"allowed: {', '.join(allowed) or '(none)'}")
        self.params = dict(params)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        out = self.fn(image, ctx, **self.params)
        if isinstance(out, StageResult) or out is None:
            return out
        arr = np.asarray(out)
        if self.stage in MASK_STAGES and arr.ndim == 2:
            return StageResult(image=None, mask=arr)
        return StageResult(image=arr)


def resolve_backend(stage: str, name: str) -> tuple[str | None, Any]:
    """``(catalogue target or None, the class or function)`` that backend ``name`` of ``stage`` names;
    a ConfigError for an unknown name.  Nothing is instantiated."""
    target = catalog.lookup(stage, name)
    if target is not None:
        return target, import_object(target)
    if ":" in name:
        return None, import_object(name)
    raise ConfigError(f"unknown {stage} backend {name!r}; allowed: {', '.join(catalog.names(stage))} "
                      f"or 'module:attr'")


def build_backend(stage: str, name: str, params: Mapping[str, Any] | None = None):
    """Instantiate backend ``name`` of ``stage`` with validated ``params``.

    ``name`` is a registered name (see :func:`harness.stages.backend_names`) or
    ``"package.module:attr"``.  Raises :class:`ConfigError` for an unknown stage,
    backend or parameter and for a value of the wrong type or out of range.
    """
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{stage}: backend name must be a non-empty string, got {name!r}")
    params = dict(params or {})
    label = f"{stage} backend {name!r}"
    target, obj = resolve_backend(stage, name)
    if inspect.isclass(obj):
        pcls = getattr(obj, "Params", None)
        if pcls is None or not dataclasses.is_dataclass(pcls):
            raise ConfigError(f"{label}: a backend class needs a dataclass 'Params'")
        own = getattr(obj, "stage", stage)
        if own != stage:
            raise ConfigError(f"{label} is a {own} backend, not a {stage} backend")
        if target is not None and getattr(obj, "name", name) != name:
            raise ConfigError(f"{label}: {target} declares itself as {obj.name!r}")
        inst = obj(_check_params(label, pcls, params))
        if ":" in name:  # record how it was named, so the config can rebuild it
            inst.stage, inst.name = stage, name
        return inst
    if callable(obj):
        return FunctionBackend(stage, name, obj, params)
    raise ConfigError(f"{label} is neither a Backend class nor a function")


def backend_config(backend) -> dict[str, Any]:
    """``{"stage", "backend", "params"}`` of a built backend (JSON-serialisable)."""
    p = backend.params
    params = dict(p) if isinstance(p, Mapping) else dataclasses.asdict(p)
    return {"stage": backend.stage, "backend": backend.name, "params": params}


# ----------------------------------------------------------------------------- output checks


def _label(backend) -> str:
    return f"{getattr(backend, 'stage', '?')} backend {getattr(backend, 'name', '?')!r}"


def _as_uint8(arr: Any, label: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise StageError(f"{label}: output image contains NaN or inf")
        a = float_to_uint8(a.astype(np.float64))
    elif a.dtype != np.uint8:
        raise StageError(f"{label}: output image dtype {a.dtype} is neither uint8 nor float in [0, 1]")
    return a


def validate_output(stage: str, result: StageResult, like: np.ndarray, backend=None) -> StageResult:
    """Check (and normalise) ``result`` of ``stage`` given its input image ``like``.

    * image: ``(H, W, 3)`` uint8 of the input's size (upscale: ``scale`` times it
      when the backend has a ``scale`` parameter, otherwise any integer multiple);
      float output must be finite and is taken as [0, 1] and rounded to uint8;
      all black (max 0) is refused unless the input was all black too.
    * mask: ``(H, W)`` finite, in [0, 1], returned as float32.
    * detect / mask stages return a mask and no image; the others an image.

    Raises :class:`StageError` with a one-line message naming stage and backend.
    """
    label = _label(backend) if backend is not None else f"{stage} backend"
    if not isinstance(result, StageResult):
        raise StageError(f"{label}: returned {type(result).__name__}, expected a StageResult or an image")
    h, w = like.shape[:2]
    if stage not in MASK_STAGES and result.image is None:
        raise StageError(f"{label}: returned no image")
    if result.image is not None:
        out = _as_uint8(result.image, label)
        if out.ndim != 3 or out.shape[2] != 3:
            raise StageError(f"{label}: output shape {out.shape} is not (H, W, 3)")
        oh, ow = out.shape[:2]
        if stage == "upscale":
            s = getattr(getattr(backend, "params", None), "scale", None)
            ok = (oh, ow) == (h * s, w * s) if isinstance(s, int) else \
                (oh % h == 0 and ow % w == 0 and oh // h == ow // w >= 1)
            if not ok:
                want = f"{w * s}x{h * s}" if isinstance(s, int) else "an integer multiple of it"
                raise StageError(f"{label}: output is {ow}x{oh} for a {w}x{h} input, expected {want}")
        elif (oh, ow) != (h, w):
            raise StageError(f"{label}: output is {ow}x{oh}, input was {w}x{h}")
        if out.max() == 0 and like.max() > 0:
            raise StageError(f"{label}: output image is all black")
        result.image = np.ascontiguousarray(out)
    if result.mask is not None:
        m = np.asarray(result.mask)
        if m.dtype.kind not in "fiub":
            raise StageError(f"{label}: mask dtype {m.dtype} is not numeric")
        m = m.astype(np.float32)
        if m.shape != (h, w):
            raise StageError(f"{label}: mask shape {m.shape} does not match the image {(h, w)}")
        if not np.all(np.isfinite(m)):
            raise StageError(f"{label}: mask contains NaN or inf")
        if m.size and (m.min() < 0 or m.max() > 1):
            raise StageError(f"{label}: mask values {m.min():g}..{m.max():g} are outside [0, 1]")
        result.mask = m
    return result


def run_stage(backend, image: np.ndarray, ctx: StageContext) -> StageResult:
    """Call ``backend(image, ctx)`` and validate the result (see :func:`validate_output`)."""
    return validate_output(backend.stage, backend(image, ctx), image, backend)


BatchCall = Callable[[Sequence[np.ndarray], Sequence[StageContext]], list]


def batch_call(backend) -> BatchCall | None:
    """``backend``'s batch method as ``f(images, ctxs) -> list[StageResult]``, or None when it has none.

    ``call_batch(images, ctxs)`` is taken as is; a generate backend's ``generate_batch(image, ctxs)``
    is called once per run of equal input images (for generate, one placeholder for every seed)."""
    fn = getattr(backend, "call_batch", None)
    if callable(fn):
        return fn
    gen = getattr(backend, "generate_batch", None)
    if not callable(gen) or getattr(backend, "stage", None) != "generate":
        return None

    def adapted(images: Sequence[np.ndarray], ctxs: Sequence[StageContext]) -> list:
        out: list = []
        i = 0
        while i < len(images):
            j = i + 1
            while j < len(images) and np.array_equal(images[j], images[i]):
                j += 1
            out.extend(gen(images[i], list(ctxs[i:j])))
            i = j
        return out

    return adapted


def run_stage_batch(backend, images: Sequence[np.ndarray], ctxs: Sequence[StageContext]) -> list[StageResult]:
    """Every ``(image, ctx)`` through the backend's batch method (:func:`batch_call`), each result
    validated as :func:`run_stage` does; a ``TypeError`` when the backend has no batch method.

    All or nothing: the first invalid result raises its :class:`StageError`, naming its seed."""
    call = batch_call(backend)
    if call is None:
        raise TypeError(f"{_label(backend)} has no call_batch / generate_batch method")
    results = list(call(images, ctxs))
    if len(results) != len(images):
        raise StageError(f"{_label(backend)}: a batch of {len(images)} returned {len(results)} results")
    for i, (res, image) in enumerate(zip(results, images)):
        try:
            results[i] = validate_output(backend.stage, res, image, backend)
        except StageError as exc:
            if len(images) == 1:
                raise
            raise StageError(f"{exc} (seed {ctxs[i].seed} of a batch of {len(images)})") from exc
    return results


# ----------------------------------------------------------------------------- helpers for backends


def binary_mask(ctx: StageContext, shape: tuple[int, int], label: str) -> np.ndarray:
    """``ctx.mask >= 0.5`` as bool (all False when there is no mask); checks the shape."""
    if ctx.mask is None:
        return np.zeros(shape, bool)
    m = np.asarray(ctx.mask)
    if m.shape != tuple(shape):
        raise StageError(f"{label}: mask shape {m.shape} does not match the image {tuple(shape)}")
    return m >= 0.5
