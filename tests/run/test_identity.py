"""A stage's identity: code, weights, versions, threads; hashed once per file per process."""

import os
import sys
import time
import uuid

import numpy as np
import pytest

from harness.run import identity
from harness.run.identity import file_digest, manifest_digest, stage_identity
from harness.stages import StageContext, backend_config, build_backend, run_stage


@pytest.fixture()
def no_racy(monkeypatch):
    """Files written by the test are seconds old at most: trust their timestamps anyway."""
    monkeypatch.setattr(identity, "RACY_SECONDS", 0.0)


@pytest.fixture()
def module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"ident_backend_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    yield name, path
    sys.modules.pop(name, None)


def test_file_digest_is_computed_once_per_file_version(tmp_path, no_racy):
    f = tmp_path / "w.bin"
    f.write_bytes(b"1.00")
    d1 = file_digest(f)
    n = identity.STATS["files_hashed"]
    assert file_digest(f) == d1 and identity.STATS["files_hashed"] == n  # a stat, no read
    f.write_bytes(b"1.000")
    assert file_digest(f) != d1 and identity.STATS["files_hashed"] == n + 1


def test_a_racily_new_file_is_rehashed(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"1.00")
    d1 = file_digest(f)
    n = identity.STATS["files_hashed"]
    file_digest(f)
    assert identity.STATS["files_hashed"] == n + 1  # written just now: its timestamps are not trusted yet
    st = f.stat()
    f.write_bytes(b"0.50")  # same size, and (below) the same mtime, within one timestamp tick maybe
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_digest(f) != d1


def test_manifest_is_content_and_relative_paths_never_the_location(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d / "unet").mkdir(parents=True)
        (tmp_path / d / "unet" / "w.bin").write_bytes(b"\1\2\3")
        (tmp_path / d / "config.json").write_text("{}")
    (tmp_path / "a" / "__pycache__").mkdir()
    (tmp_path / "a" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert manifest_digest(tmp_path / "a") == manifest_digest(tmp_path / "b")
    (tmp_path / "b" / "unet" / "w.bin").rename(tmp_path / "b" / "unet" / "v.bin")
    assert manifest_digest(tmp_path / "a") != manifest_digest(tmp_path / "b")
    (tmp_path / "b" / "unet" / "v.bin").rename(tmp_path / "b" / "unet" / "w.bin")
    (tmp_path / "b" / "unet" / "w.bin").write_bytes(b"\1\2\4")
    assert manifest_digest(tmp_path / "a") != manifest_digest(tmp_path / "b")
    assert manifest_digest(tmp_path / "a" / "config.json") == manifest_digest(tmp_path / "b" / "config.json")


def test_builtin_identity_is_versions_and_threads():
    b = build_backend("denoise", "nlmeans", {})
    ident = stage_identity(b)
    assert ident["builtin"] is True and ident["harness"] and "numpy" in ident["versions"]
    assert ident["threads"] == 1 and ident["device"] == "cpu" and ident["weights"] == {}
    assert list(ident["code"]) == ["harness.stages.denoise"]


def test_declared_weights_of_the_builtin_model_backends():
    ocr = stage_identity(build_backend("detect", "rapidocr", {}))
    assert list(ocr["weights"]) == ["declared[0]"]
    sr = stage_identity(build_backend("upscale", "realesrgan", {}))
    assert list(sr["weights"]) == ["declared[0]", "declared[1]"]  # .param and .bin
    sr4 = stage_identity(build_backend("upscale", "realesrgan", {"model": "x4plus", "scale": 4}))
    assert sr4["weights"] != sr["weights"]


def test_tiny_diffusion_checkpoint_is_hashed(tmp_path):
    ckpt = tmp_path / "ckpt"
    (ckpt / "unet").mkdir(parents=True)
    (ckpt / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"weights-1")
    b = build_backend("generate", "tiny_diffusion", {"model_path": str(ckpt)})
    w1 = stage_identity(b)["weights"]
    assert list(w1) == ["declared[0]"]  # declared once, not again as the parameter
    (ckpt / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"weights-2")
    assert stage_identity(b)["weights"] != w1
    assert stage_identity(build_backend("generate", "tiny_diffusion", {}))["weights"] == {}


def test_custom_backend_code_and_path_parameters(module, tmp_path, no_racy):
    name, path = module
    path.write_text("def f(image, ctx, checkpoint='', label=''):\n    return image.copy()\n")
    ck = tmp_path / "ck.txt"
    ck.write_text("1")
    b = build_backend("denoise", f"{name}:f", {"checkpoint": str(ck), "label": "boxes"})
    ident = stage_identity(b)
    assert ident["builtin"] is False and ident["code"] == {name: file_digest(path)}
    assert list(ident["weights"]) == ["param.checkpoint"]  # "boxes" names no file: not a path
    ck.write_text("2")
    assert stage_identity(b)["weights"] != ident["weights"]


def test_an_edited_module_is_reloaded_and_the_backend_rebuilt(module):
    name, path = module
    path.write_text("def f(image, ctx):\n    return image.copy()\n")
    b = build_backend("denoise", f"{name}:f", {})
    img = np.full((8, 8, 3), 200, np.uint8)
    d1 = stage_identity(b)["code"][name]
    assert run_stage(b, img, StageContext(seed=1)).image.max() == 200
    path.write_text("def f(image, ctx):\n    return (image // 2).astype(image.dtype)\n")
    d2 = stage_identity(b)["code"][name]
    assert d2 != d1
    assert run_stage(b, img, StageContext(seed=1)).image.max() == 100  # the edited code runs
    b2 = build_backend("denoise", f"{name}:f", {})  # later builds get the reloaded module too
    assert stage_identity(b2)["code"][name] == d2 and run_stage(b2, img, StageContext(seed=1)).image.max() == 100


def test_an_edited_backend_class_is_rebuilt_in_place(module):
    name, path = module
    src = '''
from dataclasses import dataclass
from harness.stages.base import BackendBase, StageResult, spec

class Gain(BackendBase):
    @dataclass(frozen=True)
    class Params:
        gain: float = spec(1.0, 0.0, 2.0)

    def __call__(self, image, ctx):
        return StageResult(image=(image * self.params.gain * FACTOR).astype(image.dtype))

FACTOR = {factor}
'''
    path.write_text(src.format(factor=1))
    b = build_backend("denoise", f"{name}:Gain", {"gain": 0.5})
    img = np.full((8, 8, 3), 200, np.uint8)
    stage_identity(b)
    assert run_stage(b, img, StageContext(seed=1)).image.max() == 100
    path.write_text(src.format(factor=1.5) + "\n")
    stage_identity(b)
    assert run_stage(b, img, StageContext(seed=1)).image.max() == 150
    assert backend_config(b)["params"] == {"gain": 0.5} and b.name == f"{name}:Gain"


def test_a_broken_edit_is_an_error_not_the_old_code(module):
    from harness.errors import StageError

    name, path = module
    path.write_text("def f(image, ctx):\n    return image.copy()\n")
    b = build_backend("denoise", f"{name}:f", {})
    stage_identity(b)
    path.write_text("def f(image, ctx):\n    return image.copy(\n")
    with pytest.raises(StageError, match=f"backend module '{name}' changed on disk and cannot be reloaded"):
        stage_identity(b)


def test_identity_is_cheap_for_a_nightly_sized_run(module, tmp_path, no_racy):
    """120 cases x 6 stages: each file is hashed once, the rest is stats."""
    name, path = module
    path.write_text("def f(image, ctx, weights=''):\n    return image.copy()\n")
    ck = tmp_path / "ckpt"
    ck.mkdir()
    for i in range(8):
        (ck / f"part{i}.bin").write_bytes(os.urandom(1 << 20))  # an 8 MB checkpoint
    backends = [build_backend("denoise", f"{name}:f", {"weights": str(ck)}), build_backend("detect", "rapidocr", {}),
                build_backend("upscale", "realesrgan", {}), build_backend("mask", "shape", {}),
                build_backend("inpaint", "telea", {}), build_backend("generate", "tiny_diffusion", {})]
    for b in backends:  # the first case hashes every file once
        stage_identity(b)
    hashed = identity.STATS["files_hashed"]
    t0 = time.perf_counter()
    for _ in range(120):
        for b in backends:
            stage_identity(b)
    took = time.perf_counter() - t0
    assert identity.STATS["files_hashed"] == hashed  # nothing re-read
    assert took < 2.0, f"{took:.3f}s for 720 stage identities"


def test_device_is_the_one_the_backend_runs_on(module, monkeypatch):
    """A backend's ``run_device()`` is its identity's device (diffusers: ``auto`` resolved); "cpu" without one."""
    torch = pytest.importorskip("torch")
    sd = build_backend("generate", "sd", {})  # device "auto"
    monkeypatch.setattr(sd, "weight_paths", lambda: [])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert stage_identity(sd)["device"] == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert stage_identity(sd)["device"] == "cuda"
    name, path = module
    path.write_text("from dataclasses import dataclass\n\n"
                    "class Up:\n"
                    "    @dataclass(frozen=True)\n"
                    "    class Params:\n"
                    "        gpu: int = 0\n\n"
                    "    def __init__(self, params):\n"
                    "        self.params = params\n\n"
                    "    def run_device(self):\n"
                    "        return f'cuda:{self.params.gpu}'\n\n"
                    "    def __call__(self, image, ctx):\n"
                    "        return image\n\n"
                    "def plain(image, ctx):\n"
                    "    return image\n")
    assert stage_identity(build_backend("denoise", f"{name}:Up", {"gpu": 1}))["device"] == "cuda:1"
    assert stage_identity(build_backend("denoise", f"{name}:plain", {}))["device"] == "cpu"


def test_builtin_backends_are_keyed_by_the_whole_package_source():
    # helpers of built-in backends live in other modules (ncnn tiling, batch invariance):
    # the digest of every harness source file covers them
    from harness.run.identity import harness_code_digest, stage_identity
    from harness.stages import build_backend

    ident = stage_identity(build_backend("upscale", "lanczos", {"scale": 2}))
    assert ident["harness_code"] == harness_code_digest() and len(ident["harness_code"]) == 64
    custom = stage_identity(build_backend("denoise", "tests.custom_backends:equivalent_denoise", {}))
    assert custom["harness_code"] is None  # custom code is keyed by its own module's source


# --- only parameters that are paths are hashed as files -------------------------------------------------------------

PATHS_MODULE = '''
from dataclasses import dataclass, field
from pathlib import Path

from harness.stages.base import BackendBase, StageResult, spec
from harness.stages.paths import path_field


class Declared(BackendBase):
    @dataclass(frozen=True)
    class Params:
        variant: str = spec("a", choices=("a", "b"))  # a choice, not a file, whatever lies in the folder
        label: str = ""
        source: str = path_field()  # declared by metadata: its name says nothing
        log_file: str = field(default="", metadata={"path": False})  # named like one, declared not to be
        ref: Path | None = None  # typed as a path

    def __call__(self, image, ctx):
        return StageResult(image=image.copy())


def plain(image, ctx, variant="a", model_dir="", ref: Path | None = None, guide: "str | Path" = "", **kw):
    return image.copy()
'''


def test_path_params_are_declared_named_or_typed_never_guessed_from_the_folder(module):
    from harness.stages.paths import path_params

    name, path = module
    path.write_text(PATHS_MODULE)
    assert path_params(build_backend("denoise", f"{name}:Declared", {})) == ("ref", "source")
    fn = build_backend("denoise", f"{name}:plain", {"weights_file": "w.bin", "other": "x"})
    assert path_params(fn) == ("guide", "model_dir", "ref", "weights_file")  # **kw given ones by their names
    # the built-ins: model_path declared; a model *name* (realesrgan's "animavideov3") is no path
    assert path_params(build_backend("generate", "tiny_diffusion", {})) == ("model_path",)
    assert path_params(build_backend("generate", "face_gan", {})) == ("model_path",)
    assert path_params(build_backend("upscale", "realesrgan", {})) == ()


def test_a_string_that_happens_to_name_a_file_is_a_value(module, tmp_path, monkeypatch, no_racy):
    """`variant = "a"` beside a file `a` is the string "a": the file is not hashed, and editing
    it changes no key; a declared path is hashed, and its edit does."""
    name, path = module
    path.write_text(PATHS_MODULE)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").write_text("not a checkpoint")
    (tmp_path / "src.bin").write_bytes(b"1")
    b = build_backend("denoise", f"{name}:Declared", {"variant": "a", "label": "a", "log_file": "a",
                                                       "source": "src.bin"})
    fn = build_backend("denoise", f"{name}:plain", {"variant": "a", "model_dir": "a"})
    assert list(stage_identity(b)["weights"]) == ["param.source"]
    assert list(stage_identity(fn)["weights"]) == ["param.model_dir"]
    before = stage_identity(b)["weights"]
    (tmp_path / "a").write_text("edited")
    assert stage_identity(b)["weights"] == before  # "a" was never a file to it
    (tmp_path / "src.bin").write_bytes(b"2")
    assert stage_identity(b)["weights"] != before
    gone = build_backend("denoise", f"{name}:Declared", {"source": "nowhere.bin"})
    assert stage_identity(gone)["weights"] == {"param.source": "missing"}


def test_a_big_folder_named_by_a_plain_string_is_not_walked(module, tmp_path, monkeypatch):
    """A folder of more than MAX_TREE_FILES files failed the case when any string named it;
    now only a path parameter naming it is refused."""
    from harness.errors import ConfigError

    name, path = module
    path.write_text(PATHS_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(identity, "MAX_TREE_FILES", 3)
    (tmp_path / "photos").mkdir()
    for i in range(5):
        (tmp_path / "photos" / f"{i}.png").write_bytes(b"x")
    assert stage_identity(build_backend("denoise", f"{name}:plain", {"variant": "photos"}))["weights"] == {}
    with pytest.raises(ConfigError, match=r"photos: more than 3 files; a backend's path parameter naming a "
                                          r"directory is hashed"):
        stage_identity(build_backend("denoise", f"{name}:plain", {"model_dir": "photos"}))
