"""The ``noise`` / ``ch=Y`` check: luma-only noise (one draw on R, G and B alike) on held-out photographs.

It puts nothing into Cb or Cr, so ``ch=CbCr`` cannot see it; tile luma powers alone read a
contrast change as noise (coins at contrast x1.05: +9 code²).  The fit of mid/high/top luma
powers to ``v G + s P`` (:func:`harness.comparing.added_noise.added_luma_noise`) separates them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sensitivity as sv

from harness.comparing.added_noise import LUMA_SLICE, NOISE_METRIC, added_luma_noise
from harness.comparing.engine import compare_paired
from harness.comparing.tolerance import CompareConfig, ToleranceRule
from harness.measuring.driver import measure
from harness.measuring.result import Measurement, MetricValues
from harness.measuring.visibility import INVISIBLE_LSB

pytest.importorskip("cv2")


def _luma_check(checks):
    (c,) = [c for c in checks if c.metric == NOISE_METRIC and c.slice == LUMA_SLICE]
    return c


def _checks(name, candidate):
    return compare_paired(sv._measured(name), measure(candidate))


def _contrast(img, factor):
    from PIL import Image, ImageEnhance

    return np.asarray(ImageEnhance.Contrast(Image.fromarray(img)).enhance(factor))


@pytest.mark.parametrize("name", sv.HELD_OUT)
def test_sigma_2_luma_noise_fails_through_the_luma_check(name):
    img = sv.image(name)
    for seed in (7, 8):
        c = _luma_check(_checks(name, sv.luma_noise(img, 2.0, seed)))
        assert c.status == "fail", (seed, c)
        assert c.value == pytest.approx(4.0, abs=0.45)  # it reads the added luma variance


@pytest.mark.parametrize("name", sv.HELD_OUT)
def test_sigma_1_5_luma_noise_is_below_the_line_and_passes(name):
    # 1.5 LSB RMS in every window: under the invisible line (1.6)
    checks = _checks(name, sv.luma_noise(sv.image(name), 1.5))
    assert [(c.metric, c.slice) for c in checks if c.status == "fail"] == []
    assert _luma_check(checks).value == pytest.approx(2.25, abs=0.35)


@pytest.mark.parametrize("name", sv.HELD_OUT)
def test_contrast_changes_read_near_zero_not_as_noise(name):
    img = sv.image(name)
    for factor in (0.95, 1.01, 1.02, 1.05):
        c = _luma_check(_checks(name, _contrast(img, factor)))
        assert abs(c.value) < 0.8 and c.status == "pass", (factor, c)


def test_per_channel_noise_reads_its_luma_share_and_passes_here():
    # independent R, G, B noise reaches Y with gain 0.447: sigma 2 -> 1.8 code²; ch=CbCr catches it
    checks = _checks("moon", sv.noise(sv.image("moon"), 2.0))
    c = _luma_check(checks)
    assert c.value == pytest.approx(0.447 * 4.0, abs=0.2) and c.status == "pass"
    assert ("noise", "ch=CbCr") in {(x.metric, x.slice) for x in checks if x.status == "fail"}


def test_luma_check_is_antisymmetric_and_a_rule_replaces_the_line():
    mb, mc = sv._measured("coins"), measure(sv.luma_noise(sv.image("coins"), 2.0))
    cfg = CompareConfig()
    v, tol = added_luma_noise(mb, mc, cfg)
    v2, tol2 = added_luma_noise(mc, mb, cfg)
    assert v2 == pytest.approx(-v, rel=0.02) and tol2 == pytest.approx(tol, rel=0.01)
    assert INVISIBLE_LSB**2 < tol < INVISIBLE_LSB**2 + 1.6  # the line plus the fit's statistical term
    loose = CompareConfig(rules=(ToleranceRule("noise", slice="ch=Y", abs_tol=10.0),))
    assert added_luma_noise(mb, mc, loose)[1] == pytest.approx(10.0 + tol - INVISIBLE_LSB**2)
    assert _luma_check(compare_paired(mb, mc, loose)).status == "pass"


def test_a_flat_image_fits_the_noise_term_alone():
    # no content: the contrast column is zero and the fit is v alone
    flat = np.full((256, 256, 3), 128, np.uint8)
    v, tol = added_luma_noise(measure(flat), measure(sv.luma_noise(flat, 2.0)), CompareConfig())
    assert v == pytest.approx(4.0, abs=0.3)
    assert v > tol


def test_luma_check_needs_tile_band_powers_and_equal_sizes():
    m = sv._measured("coins")
    bare = Measurement({k: v for k, v in m.metrics.items() if k != "band_power"}, m.meta)
    assert added_luma_noise(m, bare, CompareConfig()) is None
    assert all(c.slice != LUMA_SLICE for c in compare_paired(m, bare) if c.metric == NOISE_METRIC)
    other = Measurement(m.metrics, m.meta | {"height": 512})
    assert added_luma_noise(m, other, CompareConfig()) is None


def test_a_non_finite_tile_power_is_an_error_not_a_pass():
    m = sv._measured("coins")
    bp = m.metrics["band_power"]
    vals = bp.values.copy()
    vals[bp.slices.index("band=top tile=r3c3 ch=Y")] = math.nan
    broken = Measurement(m.metrics | {"band_power": MetricValues(bp.slices, vals, bp.std, bp.bias)}, m.meta)
    v, tol = added_luma_noise(m, broken, CompareConfig())
    assert math.isnan(v) and math.isnan(tol)
    assert _luma_check(compare_paired(m, broken)).status == "error"


def test_jpeg_q95_on_gravel_adds_luma_noise_the_check_sees():
    """The one real-tool pair whose verdict the luma check changes (pass -> fail): JPEG q95 on a uniform
    texture adds 4.7 code² of near-white luma noise to every tile (sigma 2.2), its largest 32-px window
    change is 2.03 LSB RMS -- as visible as sigma = 2 luma noise (2.0), between the lines of ``real_tools``."""
    import real_tools as rt

    base, cand, _ = rt.pair("gravel-256", "regression", "jpeg", "q95")
    assert rt.severity("gravel-256", "regression", "jpeg", "q95") == pytest.approx(2.03, abs=0.01)
    c = _luma_check(compare_paired(measure(base), measure(cand)))
    assert c.status == "fail" and c.value == pytest.approx(4.7, abs=0.2)
