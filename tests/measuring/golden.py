"""The golden set for :mod:`tests.measuring.test_golden`: fixed images and how a measurement is flattened.

``data/measure_golden.npz`` holds every slice value, noise ``std`` and ``bias`` that
the *reference* implementation of ``measure`` gave on :func:`cases`: the plain
float64-summed, full-resolution code as it stood at commit 21d26c3, before the
second speed rework (``harness bench``), run once with ``python -m tests.measuring.golden``
there.  The fast code may compute a slice another way (float32 sums, fused maps,
a detector that reuses the forward spectrum), so the test asks how far each value
moved *as a share of the tolerance the comparison engine gives that slice*
(:func:`tolerance_shares`), not for bit equality.  Re-write the file only on
purpose -- when a metric's definition changes -- never to make a speed-up pass;
``python -m tests.measuring.golden --report`` prints the shares without writing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "measure_golden.npz"


def _textured(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth gradients plus two gratings plus noise: energy in every band, float in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.5 + 0.3 * np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in (0.0, 1.1, 2.3)], axis=2)
    grating = 0.08 * np.sin(2 * np.pi * (0.23 * np.arange(w))[None, :] + 0.3 * np.arange(h)[:, None])
    img = base + grating[..., None] * np.array([1.0, 0.6, -0.4]) + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(img, 0.0, 1.0)


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    d = ((yy - cy * h) / (ry * h)) ** 2 + ((xx - cx * w) / (rx * w)) ** 2
    return np.clip((1.15 - d) / 0.3, 0.0, 1.0).astype(np.float32)


def _photo(name: str, h: int, w: int) -> np.ndarray:
    """A scikit-image sample photograph resized to ``h x w``, uint8 RGB (grey ones repeated)."""
    from skimage import data
    from skimage.transform import resize

    img = getattr(data, name)()
    img = img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)
    # resize gives floats in [0, 1] for uint8 input (as the bench's image is made)
    return (resize(img[..., :3], (h, w), anti_aliasing=True) * 255).round().astype(np.uint8)


def cases() -> dict[str, dict]:
    """``{name: measure keyword arguments}``: sizes odd and even, every input dtype, masks, anchors,
    and three photographs: the bench's own 512 px image and mask, a wide one with anchors, a grey one."""
    a = _textured(128, 160, 0)
    b = _textured(97, 131, 1)
    c = _textured(256, 192, 2)
    anchors = np.zeros((256, 192), bool)
    anchors[20:60, 100:170] = True
    coffee_anchors = np.zeros((300, 450), bool)
    coffee_anchors[200:260, 40:150] = True
    return {
        "u8_plain": {"image": (a * 255).round().astype(np.uint8)},
        "u8_mask": {"image": (a * 255).round().astype(np.uint8), "mask": _ellipse(128, 160, 0.45, 0.55, 0.15, 0.13)},
        "u16_odd_mask": {"image": (b * 65535).round().astype(np.uint16),
                         "mask": _ellipse(97, 131, 0.5, 0.4, 0.2, 0.2) >= 0.5},
        "f64_anchors_mask": {"image": c, "anchors": anchors,
                             "mask": (_ellipse(256, 192, 0.7, 0.3, 0.12, 0.15) * 255).astype(np.uint8)},
        "u8_wide_mask_tile32": {"image": (c[:96] * 255).round().astype(np.uint8), "tile": 32, "ring": 5,
                                "mask": _ellipse(96, 192, 0.5, 0.5, 0.45, 0.45)},
        "photo_bench_mask": {"image": _photo("astronaut", 512, 512), "mask": _ellipse(512, 512, 0.45, 0.55, 0.13, 0.12)},
        "photo_coffee_anchors_mask": {"image": _photo("coffee", 300, 450), "anchors": coffee_anchors,
                                      "mask": _ellipse(300, 450, 0.35, 0.6, 0.1, 0.08)},
        "photo_camera": {"image": _photo("camera", 256, 256)},
    }


def flatten(m) -> dict[str, np.ndarray]:
    """Every metric's slice names, values, std and bias, plus the hue histogram."""
    out: dict[str, np.ndarray] = {}
    for name, mv in m.metrics.items():
        out[f"{name}/slices"] = np.asarray(mv.slices)
        out[f"{name}/values"] = mv.values
        out[f"{name}/std"] = mv.std
        out[f"{name}/bias"] = mv.bias
    out["hue_hist"] = np.asarray(m.meta["hue_hist"])
    return out


def snapshot() -> dict[str, np.ndarray]:
    from harness.measuring.driver import measure

    out = {}
    for case, kw in cases().items():
        out |= {f"{case}/{k}": v for k, v in flatten(measure(**kw)).items()}
    return out


def max_rel_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, str]:
    """Largest ``|x - y| / max(|x|, |y|)`` over every numeric array of two snapshots (0 where both are 0),
    and the key where it occurs; slice names must be equal.  Raises ``AssertionError`` on a key or name mismatch."""
    if set(a) != set(b):
        raise AssertionError(f"keys differ: {sorted(set(a) ^ set(b))[:5]}")
    worst, where = 0.0, ""
    for k in sorted(a):
        x, y = a[k], b[k]
        if x.dtype.kind in "US":
            if not np.array_equal(x, y):
                raise AssertionError(f"{k}: slice names differ")
            continue
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.shape != y.shape:
            raise AssertionError(f"{k}: shape {x.shape} != {y.shape}")
        scale = np.maximum(np.abs(x), np.abs(y))
        rel = np.divide(np.abs(x - y), scale, out=np.zeros_like(scale), where=scale > 0)
        if rel.size and rel.max() > worst:
            worst, where = float(rel.max()), f"{k}[{int(rel.argmax())}]"
    return worst, where


def reference(golden: dict[str, np.ndarray], case: str, meta: dict):
    """The reference :class:`~harness.measuring.result.Measurement` of ``case`` from the stored arrays.

    ``meta`` (image size, grid, region boxes: what the comparison needs to place slices)
    is taken from the new measurement of the same inputs.
    """
    from harness.measuring.result import Measurement, MetricValues

    names = sorted({k.split("/")[1] for k in golden if k.startswith(f"{case}/") and k.endswith("/values")})
    metrics = {m: MetricValues(tuple(str(s) for s in golden[f"{case}/{m}/slices"]), golden[f"{case}/{m}/values"],
                               golden[f"{case}/{m}/std"], golden[f"{case}/{m}/bias"]) for m in names}
    return Measurement(metrics, dict(meta))


def tolerance_shares(ref, new) -> dict[str, tuple[float, float, str]]:
    """Per metric: the largest ``|new - ref| / tolerance`` of a value, the same for the allowance's
    noise part (``k sqrt(2) |d std| + |d bias|``), and the slice where the value share peaks.

    The tolerance is the one :func:`harness.comparing.engine.compare_paired` gives the
    slice when ``new`` is compared with ``ref`` (infinite for a slice it skips as undefined).
    Slice names must agree.
    """
    from harness.comparing.engine import CompareConfig, compare_paired

    k = CompareConfig().k
    tol: dict[tuple[str, str], float] = {}
    for c in compare_paired(ref, new):
        if c.slice == "offset":  # the global hue rotation: checked through the hue slices it is made of
            continue
        # a slice the comparison skips (the hue of a grey tile: an angle of rounding errors) moves freely
        tol[c.metric, c.slice] = np.inf if c.status == "skip" else c.tolerance
    out: dict[str, tuple[float, float, str]] = {}
    for metric, r in ref.metrics.items():
        n = new.metrics[metric]
        if n.slices != r.slices:
            raise AssertionError(f"{metric}: slice names differ")
        t = np.array([tol[metric, s] for s in r.slices])
        dv = np.abs(n.values - r.values) / t
        if metric == "hue":  # circular: a wrap from 359.9 to 0.1 degrees is a move of 0.2
            dv = np.abs((n.values - r.values + 180.0) % 360.0 - 180.0) / t
        dn = (k * np.sqrt(2.0) * np.abs(n.std - r.std) + np.abs(n.bias - r.bias)) / t
        i = int(np.argmax(dv))
        out[metric] = (float(dv[i]), float(dn.max()), r.slices[i])
    return out


def report() -> dict[str, dict[str, tuple[float, float, str]]]:
    """:func:`tolerance_shares` of every case: the fast code against the stored reference."""
    from harness.measuring.driver import measure

    with np.load(GOLDEN) as z:
        golden = {k: z[k] for k in z.files}
    out = {}
    for case, kw in cases().items():
        new = measure(**kw)
        out[case] = tolerance_shares(reference(golden, case, new.meta), new)
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys

    if "--report" in sys.argv:
        for case, shares in report().items():
            for metric, (v, nz, where) in shares.items():
                print(f"{case:28s} {metric:14s} value {v:8.2e}  noise {nz:8.2e}  at {where}")
    else:
        GOLDEN.parent.mkdir(exist_ok=True)
        np.savez_compressed(GOLDEN, **snapshot())
        print(f"wrote {GOLDEN}")
