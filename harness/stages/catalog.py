"""Which backend name means which class: a static table for the built-ins, plus entry points.

Nothing registers itself on import.  The built-in names map to ``"module:Class"``
strings, imported only when a backend is built, so listing names (``--help``, error
messages, suite validation) imports no stage module.  Third-party packages add
backends through the ``harness.backends`` entry-point group, one entry per backend,
named ``"<stage>.<name>"``::

    [project.entry-points."harness.backends"]
    "denoise.my_model" = "my_pkg.models:MyDenoiser"

A name defined twice (two packages, or a package and a built-in) is an error naming
both, never a silent override (pluggy's rule).  Anything else is reachable without
registration as ``backend = "package.module:attr"``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata

from harness.errors import ConfigError

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "catalog", "lookup", "names"]

ENTRY_POINT_GROUP = "harness.backends"

_M = "harness.stages."
_D = "harness.models.diffusers_backends:"
_G = "harness.models.gan:"
BUILTIN: dict[str, dict[str, str]] = {
    "generate": {"source": _M + "generate:Source", "tiny_diffusion": _M + "generate:TinyDiffusion",
                 "sd": _D + "SDGenerate", "sd_img2img": _D + "SDImg2Img", "face_gan": _G + "FaceGAN"},
    "detect": {"rapidocr": _M + "detect:RapidOCRDetect", "ground_truth": _M + "detect:GroundTruth"},
    "mask": {"shape": _M + "mask:Shape"},
    "inpaint": {"telea": _M + "inpaint:Telea", "ns": _M + "inpaint:NavierStokes",
                "biharmonic": _M + "inpaint:Biharmonic", "patchmatch": _M + "inpaint:PatchMatch",
                "sd_inpaint": _D + "SDInpaint"},
    "denoise": {"nlmeans": _M + "denoise:NLMeans", "bilateral": _M + "denoise:Bilateral",
                "tv": _M + "denoise:TotalVariation", "oidn": _M + "denoise:OIDN"},
    "upscale": {"lanczos": _M + "upscale:Lanczos", "bicubic": _M + "upscale:Bicubic",
                "nearest": _M + "upscale:Nearest", "guided": _M + "guided:Guided",
                "edge_aware": _M + "edge_aware:EdgeAware",
                "realesrgan": _M + "sr:RealESRGAN", "sd_upscale": _D + "SDUpscale",
                "realcugan": _M + "sr:RealCUGAN", "waifu2x": _M + "sr:Waifu2x", "realsr": _M + "sr:RealSR"},
}


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict[str, tuple[str, str]]]:
    """``{stage: {name: (target "module:attr", where it came from)}}``: built-ins, then entry points."""
    out = {stage: {name: (target, "built-in") for name, target in table.items()} for stage, table in BUILTIN.items()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        stage, dot, name = ep.name.partition(".")
        origin = f"entry point {ep.name!r} of {ep.dist.name if ep.dist else 'an unknown package'}"
        if not dot or stage not in out or not name:
            raise ConfigError(f"{origin}: names a backend as '<stage>.<name>' with a stage among "
                              f"{', '.join(out)}; got {ep.name!r}")
        if name in out[stage]:
            raise ConfigError(f"{stage} backend {name!r} is defined twice: by {out[stage][name][1]} and by {origin}")
        out[stage][name] = (ep.value, origin)
    return out


def names(stage: str) -> list[str]:
    """The registered backend names of ``stage`` (nothing is imported)."""
    return sorted(catalog()[stage])


def lookup(stage: str, name: str) -> str | None:
    """The ``"module:attr"`` target registered as ``name`` for ``stage``, or ``None``."""
    hit = catalog()[stage].get(name)
    return hit[0] if hit else None
