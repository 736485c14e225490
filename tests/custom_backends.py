"""Custom stage backends plugged in by "module:attr" in the runner tests."""

import numpy as np
from scipy import ndimage


def degrading_denoise(image, ctx, sigma=1.2):
    """Over-smooths: what a bad model swap looks like."""
    out = np.stack([ndimage.gaussian_filter(image[..., c].astype(float), sigma) for c in range(3)], axis=2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def equivalent_denoise(image, ctx, strength=0.45):
    """The built-in nlmeans through a different door: must pass against its baseline."""
    from harness.stages import StageContext, build_backend, run_stage

    return run_stage(build_backend("denoise", "nlmeans", {"strength": strength}), image, StageContext(seed=ctx.seed)).image


def exploding_denoise(image, ctx):
    if ctx.anchors is not None and ctx.anchors[130, 100]:  # only microprint_dilation has an anchor there
        raise RuntimeError("model crashed")
    return image.copy()


# --- batched seeds and rerun checks (tests/run/test_batching.py) ---------------------------------------------

from dataclasses import dataclass as _dataclass  # noqa: E402

_CALLS = {"n": 0}


def nondeterministic_denoise(image, ctx):
    """Differs from call to call by 1 LSB in 5 pixels: what an unseeded model looks like to a rerun check."""
    _CALLS["n"] += 1
    out = image.copy()
    out[:5, 0, 0] ^= np.uint8(_CALLS["n"] & 1)
    return out


def _seeded(shape, seed):
    h, w = shape[:2]
    return np.random.default_rng(seed).integers(1, 255, (h, w, 3), dtype=np.uint8)


def _log(line):
    import os

    path = os.environ.get("HARNESS_TEST_BATCH_LOG")  # not a parameter: a file parameter is hashed into the key
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class BatchGenerate:
    """A generate backend with call_batch: noise seeded by ctx.seed, identical alone or in a batch;
    logs every call (``single S`` / ``batch S1,S2``) to the file ``$HARNESS_TEST_BATCH_LOG``."""

    stage, name = "generate", "custom_backends:BatchGenerate"

    @_dataclass(frozen=True)
    class Params:
        offset: int = 0  # added to every pixel of a batch (not of a single call): a batch-dependent model

    def __init__(self, params):
        self.params = params

    def __call__(self, image, ctx):
        from harness.stages import StageResult

        _log(f"single {ctx.seed}")
        return StageResult(image=_seeded(image.shape, ctx.seed), info={"generated": 1})

    def call_batch(self, images, ctxs):
        from harness.stages import StageResult

        _log("batch " + ",".join(str(c.seed) for c in ctxs))
        return [StageResult(image=np.clip(_seeded(im.shape, c.seed).astype(int) + self.params.offset, 0, 255)
                            .astype(np.uint8), info={"generated": 1}) for im, c in zip(images, ctxs)]


class GanLikeGenerate(BatchGenerate):
    """The face_gan calling convention: ``generate_batch(image, ctxs)`` instead of call_batch."""

    name = "custom_backends:GanLikeGenerate"
    call_batch = None

    def generate_batch(self, image, ctxs):
        return BatchGenerate.call_batch(self, [image] * len(ctxs), ctxs)
