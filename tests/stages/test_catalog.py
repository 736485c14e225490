"""Backend names: a static table for the built-ins, the harness.backends entry points, no import side effects."""

import subprocess
import sys
from importlib import metadata

import pytest

from harness.errors import ConfigError
from harness.stages import backend_names, build_backend, catalog
from harness.registry import import_object


def test_every_builtin_name_resolves_to_a_class_declaring_the_same_stage_and_name():
    for stage, table in catalog.BUILTIN.items():
        for name, target in table.items():
            cls = import_object(target)
            assert (cls.stage, cls.name) == (stage, name), target
        assert backend_names(stage) == sorted(table)


def test_listing_and_validating_names_imports_no_backend_module():
    code = ("import sys; from harness.stages import backend_names, STAGES; "
            "[backend_names(s) for s in STAGES]; "
            "print(sorted(m for m in sys.modules if m.startswith('harness.stages.') "
            "and m.rsplit('.', 1)[1] in ('denoise', 'detect', 'generate', 'inpaint', 'mask', 'upscale')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _fake_entry_points(monkeypatch, *specs):
    eps = [metadata.EntryPoint(name=n, value=v, group=catalog.ENTRY_POINT_GROUP) for n, v in specs]
    real = metadata.entry_points

    def entry_points(**kw):
        return metadata.EntryPoints(eps) if kw.get("group") == catalog.ENTRY_POINT_GROUP else real(**kw)

    monkeypatch.setattr(catalog.metadata, "entry_points", entry_points)
    catalog.catalog.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_catalog():
    catalog.catalog.cache_clear()
    yield
    catalog.catalog.cache_clear()


def test_a_third_party_backend_arrives_through_the_entry_point_group(monkeypatch):
    _fake_entry_points(monkeypatch, ("denoise.gentle", "custom_backends:equivalent_denoise"))
    assert "gentle" in backend_names("denoise")
    b = build_backend("denoise", "gentle", {"strength": 0.45})
    assert b.name == "gentle"


def test_an_entry_point_may_not_shadow_a_builtin(monkeypatch):
    _fake_entry_points(monkeypatch, ("inpaint.telea", "somepkg:Telea"))
    with pytest.raises(ConfigError, match=r"inpaint backend 'telea' is defined twice: by built-in and by "
                                          r"entry point 'inpaint.telea'"):
        backend_names("inpaint")


@pytest.mark.parametrize("bad", ["nostage", "paint.x", "denoise."])
def test_an_entry_point_name_must_be_stage_dot_name(monkeypatch, bad):
    _fake_entry_points(monkeypatch, (bad, "somepkg:X"))
    with pytest.raises(ConfigError, match=r"'<stage>.<name>'"):
        backend_names("denoise")


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown upscale backend 'lama'; allowed: bicubic, edge_aware, guided, lanczos, "
                                          r"nearest, realcugan, realesrgan, realsr, sd_upscale, waifu2x or 'module:attr'"):
        build_backend("upscale", "lama")
