"""Pipeline stages: generate, detect, mask, inpaint, denoise, upscale (see :mod:`.base`).

Importing this package is cheap: it imports no backend module, and neither OpenCV,
onnxruntime, ncnn nor torch.  Backend names come from :mod:`.catalog` (a static table
plus the ``harness.backends`` entry-point group); a backend's module is imported when
it is built, its heavy libraries when it is called.
"""

from harness.errors import ConfigError
from harness.stages import catalog
from harness.stages.base import (
    STAGES,
    StageContext,
    StageResult,
    backend_config,
    build_backend,
    run_stage,
    validate_output,
)

__all__ = ["STAGES", "StageContext", "StageResult", "build_backend", "backend_config", "run_stage",
           "validate_output", "backend_names"]


def backend_names(stage: str) -> list[str]:
    """Registered backend names of ``stage`` (custom ``module:attr`` backends are not listed)."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    return catalog.names(stage)
