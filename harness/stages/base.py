"""Stage protocol, per-stage registries, parameter validation and output checks.

Every backend has the same call shape, ``backend(image, ctx) -> StageResult``,
and a frozen ``Params`` dataclass whose fields are its only parameters; its
config (``backend_config``) is recorded in every report so a run can be
reproduced.  Custom backends plug in by ``"package.module:attr"``: a Backend
class, or a plain function ``f(image, ctx, **params)`` returning an image or a
``StageResult``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Protocol

import numpy as np

from harness.errors import ConfigError, StageError
from harness.registry import Registry

__all__ = ["STAGES", "StageContext", "StageResult", "Backend", "REGISTRIES", "register", "build_backend",
           "backend_config", "run_stage", "FunctionBackend"]

STAGES = ("generate", "detect", "mask", "inpaint", "denoise", "upscale")
REGISTRIES: dict[str, Registry] = {s: Registry(f"{s} backend") for s in STAGES}


@dataclass
class StageContext:
    """What a backend may read besides its input image."""

    seed: int
    mask: np.ndarray | None = None  # current soft mask, (H, W) float32 in [0, 1]
    truth_mask: np.ndarray | None = None  # the vector's exact overlay mask, (H, W) float32
    anchors: np.ndarray | None = None  # (H, W) bool: protected texture regions
    guide: np.ndarray | None = None  # pre-upscale image, (H, W, 3) uint8, for guided upscaling


@dataclass
class StageResult:
    image: np.ndarray | None
    mask: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    stage: ClassVar[str]
    name: ClassVar[str]
    Params: ClassVar[type]
    params: Any

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult: ...


def register(stage: str, name: str):
    """Class decorator: register a backend class under ``stage``/``name``."""

    def deco(cls):
        cls.stage, cls.name = stage, name
        REGISTRIES[stage].register(name, cls)
        return cls

    return deco


@dataclass(frozen=True)
class _Range:
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None


def spec(default: Any, lo: float | None = None, hi: float | None = None, choices: tuple | None = None):
    """A Params field with an allowed range or set of values."""
    return field(default=default, metadata={"range": _Range(lo, hi, choices)})


def _check_params(label: str, cls: type, params: Mapping[str, Any]):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ConfigError(f"{label}: unknown parameter {unknown[0]!r}; allowed: {', '.join(fields) or '(none)'}")
    values = {}
    for name, value in params.items():
        f = fields[name]
        default = f.default
        ok_type = type(default)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{label}: {name} must be true or false, got {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                    (ok_type is int and not float(value).is_integer()) or not math.isfinite(float(value)):
                raise ConfigError(f"{label}: {name} must be {'an integer' if ok_type is int else 'a number'}, "
                                  f"got {value!r}")
            value = ok_type(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{label}: {name} must be a string, got {value!r}")
        r: _Range | None = f.metadata.get("range")
        if r is not None:
            if r.choices is not None and value not in r.choices:
                raise ConfigError(f"{label}: {name}={value!r} is not allowed; choose one of: "
                                  f"{', '.join(map(str, r.choices))}")
            if r.lo is not None and value < r.lo or r.hi is not None and value > r.hi:
                raise ConfigError(f"{label}: {name}={value!r} is out of range [{r.lo}, {r.hi}]")
        values[name] = value
    return cls(**values)


class FunctionBackend:
    """Adapts a plain function ``f(image, ctx, **params)`` to the Backend protocol."""

    def __init__(self, stage: str, name: str, fn: Callable, params: Mapping[str, Any]) -> None:
        self.stage, self.name, self.fn = stage, name, fn
        sig = inspect.signature(fn)
        accepts_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        allowed = [p for p in list(sig.parameters)[2:] if sig.parameters[p].kind is not p.VAR_KEYWORD]
        unknown = sorted(set(params) - set(allowed)) if not accepts_kw else []
        if unknown:
            raise ConfigError(f"{stage} backend {name!r}: unknown parameter {unknown[0]!r}; "
                              f"allowed: {', '.join(allowed) or '(none)'}")
        self.params = dict(params)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        out = self.fn(image, ctx, **self.params)
        return out if isinstance(out, StageResult) else StageResult(image=out)


def build_backend(stage: str, name: str, params: Mapping[str, Any] | None = None):
    """Instantiate the backend ``name`` of ``stage`` with validated ``params``."""
    if stage not in REGISTRIES:
        raise ConfigError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    _load_builtin()
    params = dict(params or {})
    obj = REGISTRIES[stage].resolve(name)
    if inspect.isclass(obj) and hasattr(obj, "Params"):
        inst = obj(_check_params(f"{stage} backend {name!r}", obj.Params, params))
        if ":" in name:
            inst.name = name
        return inst
    if callable(obj):
        return FunctionBackend(stage, name, obj, params)
    raise ConfigError(f"{stage} backend {name!r} is neither a Backend class nor a function")


def backend_config(backend) -> dict[str, Any]:
    params = backend.params if isinstance(backend.params, dict) else dataclasses.asdict(backend.params)
    return {"stage": backend.stage, "backend": backend.name, "params": params}


def _as_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise StageError(f"{label}: output contains NaN or inf")
        a = np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise StageError(f"{label}: output dtype {a.dtype} is not uint8 or float")
    return a


def run_stage(backend, image: np.ndarray, ctx: StageContext) -> StageResult:
    """Call ``backend`` and validate what it returns (shape, dtype, finiteness, not all black)."""
    label = f"{backend.stage} backend {backend.name!r}"
    result = backend(image, ctx)
    if not isinstance(result, StageResult):
        raise StageError(f"{label}: returned {type(result).__name__}, expected StageResult or an image")
    h, w = image.shape[:2]
    if result.image is not None:
        out = _as_uint8(result.image, label)
        if out.ndim != 3 or out.shape[2] != 3:
            raise StageError(f"{label}: output shape {out.shape} is not (H, W, 3)")
        if backend.stage != "upscale" and out.shape[:2] != (h, w):
            raise StageError(f"{label}: output is {out.shape[1]}x{out.shape[0]}, input was {w}x{h}")
        if out.max() == 0 and image.max() > 0:
            raise StageError(f"{label}: output is all black")
        result.image = out
    if result.mask is not None:
        m = np.asarray(result.mask, dtype=np.float32)
        if m.shape != (h, w):
            raise StageError(f"{label}: mask shape {m.shape} does not match the image {(h, w)}")
        if not np.all(np.isfinite(m)) or m.min() < 0 or m.max() > 1:
            raise StageError(f"{label}: mask values must be finite and in [0, 1]")
        result.mask = m
    return result


_LOADED = False


def _load_builtin() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from harness.stages import denoise, detect, generate, inpaint, mask, upscale  # noqa: F401
