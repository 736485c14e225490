"""Pipeline stages: generate, detect, mask, inpaint, denoise, upscale (see :mod:`.base`).

Importing this package is cheap: it imports neither OpenCV, onnxruntime, ncnn
nor torch.  The built-in backend modules are imported on the first
:func:`build_backend` / :func:`backend_names` call; heavy libraries only when a
backend is built or called.
"""

from harness.pipeline.stages.base import (
    REGISTRIES,
    STAGES,
    StageContext,
    StageResult,
    backend_config,
    build_backend,
    run_stage,
    validate_output,
)

__all__ = ["STAGES", "REGISTRIES", "StageContext", "StageResult", "build_backend", "backend_config", "run_stage",
           "validate_output", "backend_names"]


def backend_names(stage: str) -> list[str]:
    """Registered backend names of ``stage`` (custom ``module:attr`` backends are not listed)."""
    from harness.errors import ConfigError
    from harness.pipeline.stages.base import _load_builtin

    if stage not in REGISTRIES:
        raise ConfigError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    _load_builtin()
    return REGISTRIES[stage].names()
