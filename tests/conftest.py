import os
import sys
from pathlib import Path

# tests/cases.py is a shared helper module, importable as `cases`
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch):
    """Each test sees the same environment on a laptop and in CI: ``CI`` changes what harness does
    (plain progress lines, ``harness bake`` requiring ``--reason``), so a test that wants it sets it."""
    monkeypatch.delenv("CI", raising=False)
