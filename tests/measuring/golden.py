"""The golden set for :mod:`tests.measuring.test_golden`: fixed images and how a measurement is flattened.

``python -m tests.measuring.golden`` writes ``data/measure_golden.npz`` from the
code as it stands; it was written before the hot path of ``measure`` was
reworked for speed (``harness bench``), so the test pins every slice value,
noise ``std`` and ``bias`` of the old implementation.  Re-write it only on
purpose: when a metric's definition changes, not to make a speed-up pass.
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


def cases() -> dict[str, dict]:
    """``{name: measure keyword arguments}``: sizes odd and even, every input dtype, masks, anchors."""
    a = _textured(128, 160, 0)
    b = _textured(97, 131, 1)
    c = _textured(256, 192, 2)
    anchors = np.zeros((256, 192), bool)
    anchors[20:60, 100:170] = True
    return {
        "u8_plain": {"image": (a * 255).round().astype(np.uint8)},
        "u8_mask": {"image": (a * 255).round().astype(np.uint8), "mask": _ellipse(128, 160, 0.45, 0.55, 0.15, 0.13)},
        "u16_odd_mask": {"image": (b * 65535).round().astype(np.uint16),
                         "mask": _ellipse(97, 131, 0.5, 0.4, 0.2, 0.2) >= 0.5},
        "f64_anchors_mask": {"image": c, "anchors": anchors,
                             "mask": (_ellipse(256, 192, 0.7, 0.3, 0.12, 0.15) * 255).astype(np.uint8)},
        "u8_wide_mask_tile32": {"image": (c[:96] * 255).round().astype(np.uint8), "tile": 32, "ring": 5,
                                "mask": _ellipse(96, 192, 0.5, 0.5, 0.45, 0.45)},
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


if __name__ == "__main__":  # pragma: no cover
    GOLDEN.parent.mkdir(exist_ok=True)
    np.savez_compressed(GOLDEN, **snapshot())
    print(f"wrote {GOLDEN}")


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
