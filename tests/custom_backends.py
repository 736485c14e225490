"""Custom stage backends plugged in by "module:attr" in the runner tests."""

import numpy as np
from scipy import ndimage


def degrading_denoise(image, ctx, sigma=1.2):
    """Over-smooths: what a bad model swap looks like."""
    out = np.stack([ndimage.gaussian_filter(image[..., c].astype(float), sigma) for c in range(3)], axis=2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def equivalent_denoise(image, ctx, strength=0.45):
    """The built-in nlmeans through a different door: must pass against its baseline."""
    from harness.pipeline.stages import StageContext, build_backend, run_stage

    return run_stage(build_backend("denoise", "nlmeans", {"strength": strength}), image, StageContext(seed=ctx.seed)).image


def exploding_denoise(image, ctx):
    if ctx.anchors is not None and ctx.anchors[130, 100]:  # only microprint_dilation has an anchor there
        raise RuntimeError("model crashed")
    return image.copy()
