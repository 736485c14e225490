import numpy as np
import pytest

from harness.measuring.context import prepare
from harness.measuring.driver import measure
from harness.measuring.metrics.seams import (
    SEAM_SHELLS,
    gradient_energy_map,
    seam_metrics,
)


def test_gradient_energy_of_a_ramp():
    y = np.tile(np.arange(10, dtype=np.float32) * 3.0, (5, 1))
    g = gradient_energy_map(y)
    assert g[2, 0] == pytest.approx(9.0)
    assert g[2, -1] == 0.0


def test_seam_profile_sees_a_bright_line_on_the_border():
    rng = np.random.default_rng(0)
    img = np.clip(128 + rng.normal(0, 5, (96, 96, 3)), 0, 255).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[30:60, 30:60] = 1.0
    seam = img.copy()
    seam[30:60, 30:60][:2] += 12  # top rows just inside the mask
    a, b = measure(img, mask), measure(seam, mask)
    prof_a, prof_b = a["seam_profile"], b["seam_profile"]
    assert prof_a.slices[0] == "region=border ch=Y d=-4"
    d = {s: vb - va for s, va, vb in zip(prof_a.slices, prof_a.values, prof_b.values)}
    assert d["region=border ch=Y d=-1"] > 1.5  # 2 of 30 rows on one of 4 sides
    assert abs(d["region=border ch=Y d=+3"]) < 1e-9


def test_no_seam_metrics_without_a_mask():
    assert seam_metrics(prepare(np.zeros((32, 32, 3), np.uint8))) == {}


def test_a_filled_square_brighter_than_its_surround_is_a_seam_step():
    img = np.full((64, 64, 3), 100, np.uint8)
    img[20:40, 20:40] = 110  # the fill is 10 code values brighter
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    out = seam_metrics(prepare(img, mask, ring=4))
    assert list(out) == ["seam_step", "seam_profile", "seam_grad"]
    assert out["seam_step"].slices == ("region=border ch=Y",)
    assert out["seam_step"].get("region=border ch=Y") == pytest.approx(10.0, abs=1e-4)
    prof = out["seam_profile"]
    assert prof.slices == tuple(f"region=border ch=Y d={d:+d}" for d in range(-SEAM_SHELLS, SEAM_SHELLS + 1) if d)
    np.testing.assert_allclose(prof.values, [110.0] * SEAM_SHELLS + [100.0] * SEAM_SHELLS, atol=1e-4)
    # the only gradient is the 10-code step, on the last row/column inside and just outside
    assert out["seam_grad"].get("region=border ch=Y") > 0.0
