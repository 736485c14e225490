"""Shared fixtures for the stage tests."""

from __future__ import annotations

import numpy as np
import pytest
from stage_helpers import photo


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return photo("astronaut")


@pytest.fixture(scope="session")
def gradient() -> np.ndarray:
    """A smooth colour gradient, 128x128 (nothing to lose by smoothing)."""
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float64)
    return np.stack([40 + 1.2 * xx, 60 + 0.8 * yy, 200 - 0.5 * xx - 0.3 * yy], axis=2).clip(0, 255).astype(np.uint8)
