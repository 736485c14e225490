"""Device resolution: "auto" as the run's driver resolved it, adopted by local workers without torch."""

import subprocess
import sys

PROBE = """
import sys
from harness.models.diffusers_loading import adopt_auto_device, auto_device_known, resolve_device
assert auto_device_known() is None
adopt_auto_device({given!r})
print(resolve_device("auto"), auto_device_known(), "torch" in sys.modules)
"""


def _probe(given):
    out = subprocess.run([sys.executable, "-c", PROBE.format(given=given)], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_worker_told_the_drivers_auto_device_resolves_it_without_importing_torch():
    assert _probe("cpu") == ["cpu", "cpu", "False"]


def test_an_unknown_device_is_not_adopted_and_auto_is_resolved_by_torch():
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert _probe("tpu") == [expected, expected, "True"]
    assert _probe(None) == [expected, expected, "True"]


def test_a_driver_that_never_needed_torch_tells_its_workers_nothing():
    out = subprocess.run([sys.executable, "-c", "import sys; from harness.models.diffusers_loading import "
                          "auto_device_known as k; print(k(), 'torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]
