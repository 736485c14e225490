"""Shared fixtures for the vector tests."""

from __future__ import annotations

import pytest

from harness.suite import vectors as V
from harness.project import builtin_dir


@pytest.fixture(scope="module")
def shipped():
    return V.discover(builtin_dir("vectors"))
