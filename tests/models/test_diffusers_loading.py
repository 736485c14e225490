"""Device resolution: "auto" as the run's driver resolved it, adopted by local workers without torch."""

import subprocess
import sys

PROBE = """
import sys
from harness.models.diffusers_loading import adopt_auto_device, auto_device_known, resolve_device
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
    imported = str(torch.version.cuda is not None or torch.version.hip is not None)  # a CPU build needs no import
    assert _probe("tpu") == [expected, expected, imported]
    assert _probe(None) == [expected, expected, imported]


def test_a_cpu_build_of_torch_resolves_auto_without_importing_it(tmp_path):
    """torch/version.py says which build is installed: a CPU build can only run on the CPU."""
    import torch

    if torch.version.cuda is not None or torch.version.hip is not None:
        import pytest

        pytest.skip("a CUDA/ROCm build of torch: 'auto' needs torch itself")
    out = subprocess.run([sys.executable, "-c", "import sys; from harness.models.diffusers_loading import "
                          "resolve_device as r; print(r('auto'), 'torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"]


def test_the_build_check_reads_cuda_and_hip_from_torch_version(monkeypatch, tmp_path):
    import importlib.util
    import sys as _sys
    from types import SimpleNamespace

    from harness.models import diffusers_loading as dl

    monkeypatch.delitem(_sys.modules, "torch", raising=False)
    pkg = tmp_path / "torch"
    pkg.mkdir()
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: SimpleNamespace(submodule_search_locations=[str(pkg)]))
    (pkg / "version.py").write_text("cuda: Optional[str] = None\nhip: Optional[str] = None\n")
    assert dl._cpu_build_of_torch() is True
    (pkg / "version.py").write_text("cuda: Optional[str] = '12.4'\nhip: Optional[str] = None\n")
    assert dl._cpu_build_of_torch() is False
    (pkg / "version.py").write_text("cuda: Optional[str] = None\nhip: Optional[str] = '6.2'\n")
    assert dl._cpu_build_of_torch() is False
    (pkg / "version.py").write_text("")  # unreadable as a build: ask torch
    assert dl._cpu_build_of_torch() is False
