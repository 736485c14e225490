"""Do texture anchors survive?  How much of the clean source's fine texture an output still holds.

Used by :mod:`harness.checks.expectations` for the ``anchors_survive`` absolute check.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["anchor_retention", "ANCHOR_MIN_RETAINED", "ANCHOR_BANDS", "NOISE_K", "RESAMPLING"]

# anchors_survive: the share of the clean source's fine-band energy (source-scale bands
# high + top, 1/8 .. 1/2 cycle/px: what makes microprint and fine print legible) that the
# output must still hold *as the source's own texture*.  Half the energy (-3 dB, the
# half-power point) is a contrast loss of 29 %, two to three times the ~10 % contrast
# discrimination threshold of suprathreshold texture: still the same print, visibly
# softer.  Below it the texture is washed out or replaced.  Measured: the smoke suite's
# healthy cases keep 0.69-0.91 of it (a 0.45-strength bilateral or nl-means denoise costs
# up to a third); a 12 px over-dilated mask with anchor protection off leaves 0.27 (Telea)
# or 0.29 (PatchMatch) of the microprint; a total-variation denoise at strength 0.3 leaves
# 0.23-0.49 (letters smeared).  Fine regressions inside the healthy range are the baseline
# comparison's job (band_power region=anchor, 10 %).
ANCHOR_MIN_RETAINED = 0.5
ANCHOR_BANDS = ("high", "top")
# noise multiplier of the anchors' allowance: the comparison engine's default k
NOISE_K = 4.0

# The interpolation the reference (the clean source) is resized with to the output size:
# the upscale backend's own kernel (``guided`` and ``edge_aware`` start from bicubic), Lanczos otherwise.
RESAMPLING = {"lanczos": "INTER_LANCZOS4", "bicubic": "INTER_CUBIC", "guided": "INTER_CUBIC",
              "edge_aware": "INTER_CUBIC", "nearest": "INTER_NEAREST"}


def _resample(name: str) -> int:
    from harness.threads import cv2_module

    cv2 = cv2_module()
    return getattr(cv2, RESAMPLING.get(name, "INTER_LANCZOS4"))


def anchor_retention(clean: np.ndarray, output: np.ndarray, boxes: Sequence[Sequence[int]],
                     upscale_backend: str = "lanczos") -> list[tuple[float, float, float]]:
    """Per anchor box ``(x0, y0, x1, y1)`` (at the clean source's scale): ``(retained, allowance, power)``.

    The reference is the vector's clean source (overlays never drawn, anchors drawn).  When
    the output is larger (an upscale), the source is first resized to the output size with
    the upscale backend's own interpolation (:data:`RESAMPLING`), so the resampling kernel
    costs both sides alike; then both are brought back to the source size with the same
    area filter and compared at the source's scale, in its bands ``high`` and ``top``.

    ``retained = max(g, 0)²`` with ``g = <o, r> / <r, r>``, the least-squares gain of the
    source's band-passed luma ``r`` in the output's ``o`` over the anchor box: the share of
    the source's fine-band energy still present *as the source's texture*.  Smoothing by a
    factor ``a`` gives ``a²`` (the energy ratio); a fill that replaces the texture with
    other texture of the same energy (PatchMatch) gives ~0, which an energy ratio misses.

    ``allowance = (1 - ANCHOR_MIN_RETAINED) + (2 bias + NOISE_K sqrt(2) std) / power``: the
    visibility margin plus the noise floor of the source's fine-band ``power`` (code²;
    :func:`~harness.measuring.metrics.noise.power_noise` with the benign 1.25 LSB noise),
    the ``2 bias`` being the energy a denoiser may rightly remove as quantisation noise.
    """
    import scipy.fft as sfft

    from harness.measuring.bands import BAND_NAMES, band_gains, band_images
    from harness.measuring.channels import rgb_to_ycc
    from harness.measuring.metrics.noise import BENIGN_LSB, power_noise
    from harness.threads import cv2_module

    h, w = clean.shape[:2]
    o, r = np.ascontiguousarray(output), np.ascontiguousarray(clean)
    if o.shape[:2] != (h, w):
        cv2 = cv2_module()
        big = cv2.resize(r, (o.shape[1], o.shape[0]), interpolation=_resample(upscale_backend))
        o = cv2.resize(o, (w, h), interpolation=cv2.INTER_AREA)
        r = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    idx = [BAND_NAMES.index(b) for b in ANCHOR_BANDS]

    def fine(img: np.ndarray) -> np.ndarray:
        y = rgb_to_ycc(img.astype(np.float32))[0]
        return band_images(sfft.rfft2(y, workers=1), (h, w))[idx].astype(np.float64)

    bo, br = fine(o), fine(r)
    gain = float(band_gains(h, w)[idx].sum())
    out = []
    for x0, y0, x1, y1 in boxes:
        ob, rb = bo[:, y0:y1, x0:x1], br[:, y0:y1, x0:x1]
        n = rb[0].size
        rr = float(np.sum(rb * rb))
        power = rr / n
        std, bias = power_noise(np.array([power]), n, gain, BENIGN_LSB)
        noise = (2.0 * float(bias[0]) + NOISE_K * math.sqrt(2.0) * float(std[0])) / power if power > 0 else math.inf
        g = float(np.sum(ob * rb)) / rr if rr > 0 else 0.0
        out.append((max(g, 0.0) ** 2, (1.0 - ANCHOR_MIN_RETAINED) + noise, power))
    return out
