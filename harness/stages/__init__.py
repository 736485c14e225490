"""Pipeline stages: generate, detect, mask, inpaint, denoise, upscale (see :mod:`.base`)."""

from harness.stages.base import (
    REGISTRIES,
    STAGES,
    StageContext,
    StageResult,
    backend_config,
    build_backend,
    run_stage,
)

__all__ = ["STAGES", "REGISTRIES", "StageContext", "StageResult", "build_backend", "backend_config", "run_stage",
           "backend_names"]


def backend_names(stage: str) -> list[str]:
    from harness.stages.base import _load_builtin

    _load_builtin()
    return REGISTRIES[stage].names()
