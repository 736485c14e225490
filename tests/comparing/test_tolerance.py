"""Tolerances: the visibility term of each model, rules that override it, the registry's defaults."""

import numpy as np
import pytest

from harness.comparing.engine import CompareConfig, ToleranceRule, compare_paired
from harness.comparing.tolerance import overridden, visibility_tolerance
from harness.measuring.metrics import METRICS, VISIBILITY_MODELS, MetricSpec
from harness.measuring.result import Measurement, MetricValues
from harness.measuring.visibility import visible_change


def _m(metric, values, lsb=None, slices=None):
    n = len(values)
    mv = MetricValues(tuple(slices or [f"s{i}" for i in range(n)]), np.array(values, float), np.zeros(n), np.zeros(n))
    return Measurement({metric: mv}, {"lsb": lsb} if lsb is not None else {})


def test_amplitude_model_is_exactly_a_threshold_on_the_rms_amplitude():
    # band power P = A²: |dP| <= 2 Abar T(Abar)  <=>  |dA| <= T(Abar)
    for a in (2.0, 8.0, 20.0, 50.0):
        t = float(visible_change(a))
        for da in (0.9 * t, 1.1 * t):
            b, c = (a - da / 2) ** 2, (a + da / 2) ** 2
            tol = visibility_tolerance("amplitude", np.array([b]), np.array([c]))[0]
            assert (abs(c - b) > tol) == (da > t)


def test_level_and_jnd_models():
    assert visibility_tolerance("level", np.array([30.0]), np.array([34.0]))[0] == pytest.approx(
        float(visible_change(32.0)))
    assert visibility_tolerance("jnd", np.array([0.3]), np.array([-2.0]))[0] == 1.0
    assert visibility_tolerance(None, np.array([1.0]), np.array([2.0]))[0] == 0.0
    # additive: T(A_lo)² over the smaller side, the same for either order
    add = visibility_tolerance("additive", np.array([0.01, 400.0]), np.array([0.5, 100.0]))
    np.testing.assert_allclose(add, [0.25, float(visible_change(10.0)) ** 2])
    with pytest.raises(ValueError, match="unknown visibility model"):
        visibility_tolerance("weber", np.array([1.0]), np.array([2.0]))


def test_a_10_percent_energy_loss_fails_on_strong_texture_and_passes_on_faint():
    strong = compare_paired(_m("band_power", [1600.0]), _m("band_power", [1440.0]))  # A = 40: -5 % amplitude
    faint = compare_paired(_m("band_power", [9.0]), _m("band_power", [8.1]))  # A = 3
    assert strong[0].status == "fail" and faint[0].status == "pass"


def test_the_engine_scales_the_model_to_the_images_lsb():
    lsb16 = 255.0 / 65535.0
    # A = 10 code, dA = 0.2 code: under T = 0.58 code at 8 bits, over T = 0.11 code at 16 bits (where A is
    # 2570 LSB and masks only as much as 2570 LSB do: 28 LSB)
    b, c = [100.0], [9.8**2]
    assert compare_paired(_m("band_power", b, 1.0), _m("band_power", c, 1.0))[0].status == "pass"
    assert compare_paired(_m("band_power", b, lsb16), _m("band_power", c, lsb16))[0].status == "fail"


def test_a_rule_with_tolerances_replaces_the_model_on_its_slices():
    cfg = CompareConfig(rules=(ToleranceRule("band_power", "b", rel_tol=0.05),))
    assert list(overridden("band_power", ["a", "b"], cfg)) == [False, True]
    assert not overridden("contrast", ["a", "b"], cfg).any()
    direction_only = CompareConfig(rules=(ToleranceRule("band_power", "*", direction="increase"),))
    assert not overridden("band_power", ["a"], direction_only).any()
    base = _m("band_power", [100.0, 100.0], slices=["a", "b"])
    cand = _m("band_power", [108.0, 108.0], slices=["a", "b"])
    checks = compare_paired(base, cand, cfg)
    assert checks[0].tolerance > checks[1].tolerance == pytest.approx(0.05 * 104.0)


def test_every_metric_with_a_model_has_no_hand_set_tolerance():
    models = {name: METRICS.resolve(name).visibility for name in METRICS.names()}
    assert {"band_power", "spectrum", "contrast", "chroma", "detail", "blockiness"} <= {n for n, v in models.items() if v}
    for name, model in models.items():
        spec = METRICS.resolve(name)
        if model is not None:
            assert model in VISIBILITY_MODELS and spec.rel_tol == 0.0 and spec.abs_tol == 0.0, name
    with pytest.raises(ValueError, match="visibility must be one of"):
        MetricSpec("x", "1", "both", 0.0, 0.0, "x", visibility="weber")
