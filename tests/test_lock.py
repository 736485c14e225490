"""constraints.txt is the lock of the tested environment: every package pinned exactly, compiled
from pyproject.toml (see its header), and what is installed here is what it pins."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.match(line)
        assert m, f"constraints.txt: not an exact pin: {line!r}"
        pins[_norm(m.group(1))] = m.group(2)
    return pins


def _requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in ("pipeline", "test", "ray", "history"):
        reqs += project["optional-dependencies"][extra]
    return {_norm(re.match(r"[A-Za-z0-9._-]+", r).group(0)) for r in reqs}


def test_distribution_name_is_not_the_unrelated_harness():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    from harness.naming import DISTRIBUTION

    assert project["name"] == DISTRIBUTION == "image-harness"
    assert project["scripts"]["harness"] == "harness.cli:main"


def test_lock_pins_every_requirement_and_torch_cpu():
    lock = _lock()
    missing = sorted(_requirements() - set(lock))
    assert not missing, f"constraints.txt lacks pins for {missing}: re-run the pip-compile line in its header"
    assert lock["torch"].startswith("2.13.0"), lock["torch"]
    assert len(lock) > 60  # transitive packages too, not only the direct ones


def test_installed_versions_are_the_locked_ones():
    """The versions baselines record (harness.run.environment) are those of the lock."""
    lock = _lock()
    drift = {}
    for name in ("numpy", "scipy", "scikit-image", "pillow", "opencv-python-headless", "onnxruntime", "rapidocr",
                 "ncnn", "pyoidn", "torch", "diffusers", "transformers", "pyarrow", "pytest"):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.skip(f"{name} is not installed (not the locked environment)")
        if have != lock[_norm(name)]:
            drift[name] = (have, lock[_norm(name)])
    assert not drift, f"installed vs locked: {drift}"
