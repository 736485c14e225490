import numpy as np
import pytest

from harness.errors import ConfigError
from harness.stages import StageContext, backend_config, build_backend, run_stage

PLACEHOLDER = np.full((96, 128, 3), 128, np.uint8)


@pytest.fixture(scope="module")
def tiny():
    return build_backend("generate", "tiny_diffusion", {"steps": 3})


def gen(backend, seed=1, prompt="a brick wall", negative=None):
    return run_stage(backend, PLACEHOLDER, StageContext(seed=seed, prompt=prompt, negative_prompt=negative))


def test_tiny_diffusion_is_deterministic_and_seed_and_prompt_sensitive(tiny):
    a = gen(tiny)
    assert a.image.shape == PLACEHOLDER.shape and a.image.dtype == np.uint8
    assert a.info == {"generated": 1, "threads": 1}
    assert np.array_equal(a.image, gen(tiny).image)  # same seed, same bits
    assert np.abs(a.image.astype(int) - gen(tiny, seed=2).image).mean() > 10
    assert np.abs(a.image.astype(int) - gen(tiny, prompt="a blue sky").image).mean() > 1
    assert a.image.std() > 10  # not a flat field


def test_guidance_uses_the_negative_prompt():
    b = build_backend("generate", "tiny_diffusion", {"steps": 2, "guidance": 4.0})
    x, y = gen(b, negative="blurry"), gen(b, negative="sharp")
    assert not np.array_equal(x.image, y.image)


def test_vectors_without_a_prompt_pass_through(tiny):
    r = run_stage(tiny, PLACEHOLDER, StageContext(seed=1))
    assert np.array_equal(r.image, PLACEHOLDER) and r.info == {"generated": 0}


def test_params_are_validated_and_recorded():
    with pytest.raises(ConfigError, match="resolution=60 must be a multiple of 8"):
        build_backend("generate", "tiny_diffusion", {"resolution": 60})
    with pytest.raises(ConfigError, match="model_path '/nonexistent' is not a local diffusers checkpoint"):
        build_backend("generate", "tiny_diffusion", {"model_path": "/nonexistent"})
    cfg = backend_config(build_backend("generate", "tiny_diffusion", {"steps": 7}))
    assert cfg["params"]["steps"] == 7 and cfg["params"]["threads"] == 0 and cfg["params"]["model_seed"] == 0
