"""The curated public API: every name resolves, lazily, and the two entry points work."""

import subprocess
import sys

import numpy as np
import pytest

import harness


def test_every_public_name_resolves_and_is_listed():
    assert sorted(harness.__all__) == sorted(harness._LAZY)
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope  # noqa: B018


def test_import_harness_is_light():
    code = ("import sys, harness; heavy = [m for m in ('numpy', 'scipy', 'PIL', 'torch', 'cv2', 'pandas') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_measure_and_compare_are_functions_even_after_importing_the_packages():
    import harness.comparing.engine  # noqa: F401 - the folders must not shadow the API names
    import harness.measuring.driver  # noqa: F401

    assert callable(harness.measure) and callable(harness.compare)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    same = harness.compare(img, img.copy())
    assert same and {c.status for c in same} <= {"pass", "skip"}
    washed = (img.astype(float) * 0.5 + 64).astype(np.uint8)
    checks = harness.compare(harness.measure(img), washed)
    assert any(c.status == "fail" and c.metric == "contrast" for c in checks)
