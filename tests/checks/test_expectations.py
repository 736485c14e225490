"""harness.checks.expectations: absolute checks of a vector's [expect] table and of each stage's effect.

Analytic cases on hand-made arrays: what each stage did (StageLog), the check each [expect] key
makes (pass and fail, exact messages), the anchor retention measure, and the CHECK row format.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.comparing.engine import Check, summarize_status
from harness.measuring.bands import band_gains
from harness.measuring.metrics.noise import BENIGN_LSB, power_noise
from harness.checks.expectations import (ANCHOR_MIN_RETAINED, DEFAULT_MIN_DETECT_RECALL, NOISE_K, ExpectationCheck,
                                           StageLog, anchor_retention, evaluate, failure_note, is_expectation)
from harness.suite.vectors.schema import Vector

H, W = 64, 64
STAGES = ("generate", "detect", "mask", "inpaint", "denoise", "upscale")
BACKENDS = {"generate": "source", "detect": "ocr", "mask": "shape", "inpaint": "fill", "denoise": "nl",
            "upscale": "lanczos"}
ANCHOR_BOX = [0, 44, 64, 60]  # x0, y0, x1, y1: rows 44..59


def vector(expect=None, overlays=True, anchors=True, size=(H, W)) -> Vector:
    ovs = ({"kind": "text", "text": "HI", "position": [4, 4]},) if overlays else ()
    ans = ({"kind": "texture", "box": list(ANCHOR_BOX)},) if anchors else ()
    return Vector("t", Path("t.toml"), "", (), size, {"kind": "recipe", "recipe": "security_card"}, ovs, ans,
                  dict(expect or {}))


def texture(seed=0, shape=(H, W)) -> np.ndarray:
    """Grey-level white noise around 128: every band holds energy."""
    rng = np.random.default_rng(seed)
    y = np.clip(128 + rng.normal(0, 30, shape), 0, 255)
    return np.repeat(y[..., None], 3, axis=2).astype(np.uint8)


def truth_mask() -> np.ndarray:
    t = np.zeros((H, W), np.float32)
    t[8:20, 8:40] = 1.0  # 384 px
    return t


def run_log(*, detected=True, rejected=None, inpaint_changes=True, denoise_strength=0.5, denoise_changes=True,
            upscale=2, truth=None) -> tuple[StageLog, np.ndarray]:
    """A StageLog driven through all six stages with synthetic arrays; returns it and the final image."""
    log = StageLog()
    img = texture(1)
    truth = truth_mask() if truth is None else truth
    log.record("generate", "source", {}, img, None, truth, img.copy(), None, {})
    det = np.zeros((H, W), np.float32)
    if detected:
        det[8:20, 8:40] = 1.0
    log.record("detect", "ocr", {}, img, None, truth, None, det, {})
    mask = np.zeros((H, W), np.float32)
    if detected:
        mask[6:22, 6:42] = 1.0  # 576 px: coverage 0.140625
    info = {"coverage": float(mask.mean())}
    if rejected:
        info["rejected"] = rejected
        mask = np.zeros((H, W), np.float32)
    elif not detected:
        info["rejected"] = "empty mask"
    log.record("mask", "shape", {}, img, det, truth, None, mask, info)
    fill = None if rejected or not detected else mask
    if fill is None:
        log.skipped("inpaint")
    else:
        out = img.copy()
        if inpaint_changes:
            out[6:22, 6:42] = 255 - out[6:22, 6:42]  # every masked pixel changes
        log.record("inpaint", "fill", {}, img, fill, truth, out, None, {})
        img = out
    out = img.copy()
    if denoise_changes:
        out[::2, ::2] //= 2
    log.record("denoise", "nl", {"strength": denoise_strength}, img, fill, truth, out, None, {})
    img = out
    big = np.kron(img, np.ones((upscale, upscale, 1), np.uint8))
    log.record("upscale", "lanczos", {"scale": upscale}, img, fill, truth, big, None, {})
    return log, big


def by_slice(checks):
    return {(c.metric, c.slice): c for c in checks}


def find(checks, metric, prefix):
    [c] = [c for c in checks if c.metric == metric and c.slice.startswith(prefix)]
    return c


# --- StageLog: what each stage did --------------------------------------------------------------------------------

def test_a_healthy_run_records_an_effect_for_every_stage():
    log, _ = run_log()
    eff = {s: (e["effect"], e["ok"]) for s, e in log.effects.items()}
    assert eff == {"generate": ("passthrough", True), "detect": ("found", True), "mask": ("kept", True),
                   "inpaint": ("filled", True), "denoise": ("changed", True), "upscale": ("scaled", True)}
    assert log.effects["detect"]["note"] == "detect (ocr) found 384 px (9.4% of the image)"
    assert log.effects["mask"]["note"] == "mask (shape) kept a fill region of 14.1%"
    assert log.effects["upscale"]["note"] == "upscale (lanczos) 64x64 -> 128x128"
    assert log.effects["upscale"]["value"] == 2.0
    assert log.recall == 1.0 and log.truth_px == 384 and log.rejected is None
    assert log.fill is not None and log.fill.sum() == 576


def test_inpaint_value_is_the_share_of_the_fill_region_that_changed():
    log = StageLog()
    img = np.full((H, W, 3), 100, np.uint8)
    m = np.zeros((H, W), np.float32)
    m[:, :32] = 1.0
    out = img.copy()
    out[:, :8] = 101  # 8 of the 32 masked columns
    log.record("inpaint", "telea", {}, img, m, None, out, None, {})
    e = log.effects["inpaint"]
    assert (e["effect"], e["value"], e["ok"]) == ("filled", 0.25, True)
    assert e["note"] == "inpaint (telea) changed 25.0% of the 2048 px fill region"


def test_generate_of_a_prompt_vector_must_not_return_the_placeholder():
    log = StageLog()
    log.generated("tiny_diffusion", np.full((H, W, 3), 128, np.uint8), None)
    assert (log.effects["generate"]["effect"], log.effects["generate"]["ok"]) == ("blank", False)
    assert log.effects["generate"]["note"] == "generate (tiny_diffusion) returned the blank grey placeholder"
    log.generated("tiny_diffusion", texture(), None)
    assert (log.effects["generate"]["effect"], log.effects["generate"]["ok"]) == ("generated", True)


# --- stage_effect checks ------------------------------------------------------------------------------------------

def test_healthy_run_passes_every_absolute_check_with_a_note():
    log, _ = run_log()
    v = vector({"max_mask_coverage": 0.2, "anchors_survive": True, "min_anchor_gap_px": 2, "upscale": 2})
    checks = evaluate(v, STAGES, BACKENDS, log, texture(0), np.kron(texture(0), np.ones((2, 2, 1), np.uint8)))
    assert [c.slice for c in checks if c.metric == "expect"] == [
        "min_detect_recall stage=detect", "max_mask_coverage stage=mask", "min_anchor_gap_px anchor=0",
        "anchors_survive anchor=0 band=high+top", "upscale stage=upscale"]
    effects = [c for c in checks if c.metric == "stage_effect"]
    assert [c.slice for c in effects] == ["stage=generate effect=passthrough", "stage=detect effect=found",
                                          "stage=mask effect=kept", "stage=inpaint effect=filled",
                                          "stage=denoise effect=changed", "stage=upscale effect=scaled"]
    assert all(c.status == "pass" and c.note for c in checks), [(c.slice, c.status) for c in checks]
    assert summarize_status(checks) == "pass" and failure_note(checks) is None
    inp = find(checks, "stage_effect", "stage=inpaint")
    assert (inp.value, inp.baseline, inp.delta, inp.tolerance) == (1.0, 0.0, 1.0, 0.0)


def test_a_rejected_mask_fails_mask_and_inpaint_with_the_reason():
    log, out = run_log(rejected="coverage 0.190 > max_coverage 0.12")
    checks = evaluate(vector(), STAGES, BACKENDS, log, texture(0), out)
    mask = find(checks, "stage_effect", "stage=mask")
    inp = find(checks, "stage_effect", "stage=inpaint")
    assert (mask.slice, mask.status, mask.value) == ("stage=mask effect=rejected", "fail", 0.0)
    assert mask.note == "mask (shape) rejected the mask (coverage 0.190 > max_coverage 0.12)"
    assert (inp.slice, inp.status) == ("stage=inpaint effect=skipped", "fail")
    assert inp.note == "inpaint did not run: the mask was rejected (coverage 0.190 > max_coverage 0.12)"
    assert failure_note(checks) == (
        "expectation failed: mask (shape) rejected the mask (coverage 0.190 > max_coverage 0.12); "
        "inpaint did not run: the mask was rejected (coverage 0.190 > max_coverage 0.12)")
    # nothing reached inpaint, so the coverage bound holds and says so
    cov = find(checks, "expect", "max_mask_coverage")
    assert (cov.status, cov.value) == ("pass", 0.0)
    assert cov.note == "nothing was filled (no mask reached inpaint) <= max_mask_coverage 0.12"


def test_a_rejection_the_vector_expects_passes_and_still_names_it():
    log, out = run_log(rejected="coverage 0.190 > max_coverage 0.12")
    checks = evaluate(vector({"mask_rejected": True}), STAGES, BACKENDS, log, texture(0), out)
    assert summarize_status(checks) == "pass"
    mask = find(checks, "stage_effect", "stage=mask")
    assert (mask.slice, mask.status) == ("stage=mask effect=rejected", "pass")
    assert mask.note == ("mask (shape) rejected the mask (coverage 0.190 > max_coverage 0.12), "
                         "as the vector expects (mask_rejected = true)")
    inp = find(checks, "stage_effect", "stage=inpaint")
    assert (inp.slice, inp.status) == ("stage=inpaint effect=skipped", "pass")
    assert inp.note.startswith("inpaint did not run: the mask was rejected (coverage 0.190")
    exp = find(checks, "expect", "mask_rejected")
    assert (exp.slice, exp.value, exp.baseline, exp.status) == ("mask_rejected stage=mask", 1.0, 1.0, "pass")
    assert exp.note == "the mask was rejected (coverage 0.190 > max_coverage 0.12), as the vector expects"


def test_an_expected_rejection_that_does_not_happen_fails():
    log, out = run_log()
    checks = evaluate(vector({"mask_rejected": True}), STAGES, BACKENDS, log, texture(0), out)
    exp = find(checks, "expect", "mask_rejected")
    assert (exp.value, exp.baseline, exp.status) == (0.0, 1.0, "fail")
    assert exp.note == "the mask was kept (coverage 0.141); the vector expects it rejected"
    log, out = run_log(rejected="coverage 0.190 > max_coverage 0.12")
    exp = find(evaluate(vector({"mask_rejected": False}), STAGES, BACKENDS, log, texture(0), out),
               "expect", "mask_rejected")
    assert exp.status == "fail" and exp.note.endswith("; the vector expects it kept")


def test_an_empty_detection_fails_detect_mask_inpaint_and_recall():
    log, out = run_log(detected=False)
    checks = evaluate(vector(), STAGES, BACKENDS, log, texture(0), out)
    got = {c.slice: (c.status, c.note) for c in checks if c.status == "fail"}
    assert got == {
        "stage=detect effect=nothing": ("fail", "detect (ocr) found nothing: the overlay (384 px) was not found"),
        "stage=mask effect=empty": ("fail", "mask (shape) rejected the mask (empty mask)"),
        "stage=inpaint effect=skipped": ("fail", "inpaint did not run: the mask was rejected (empty mask)"),
        "min_detect_recall stage=detect": ("fail", "detect recall 0.000 < min_detect_recall 0.5"),
    }


def test_nothing_detected_on_a_vector_without_overlays_is_not_a_failure():
    log, out = run_log(detected=False, truth=np.zeros((H, W), np.float32))
    checks = evaluate(vector(overlays=False), STAGES, BACKENDS, log, texture(0), out)
    assert summarize_status(checks) == "pass", [(c.slice, c.note) for c in checks if c.status == "fail"]
    det = find(checks, "stage_effect", "stage=detect")
    assert det.note == "detect (ocr) found nothing, and the vector has no overlay to find"
    assert find(checks, "stage_effect", "stage=mask").note.endswith(": there is nothing to remove")
    assert not [c for c in checks if c.slice.startswith("min_detect_recall")]  # no overlay: no recall to judge


def test_a_stage_that_returns_its_input_unchanged_fails():
    log, out = run_log(inpaint_changes=False, denoise_changes=False)
    checks = evaluate(vector(), STAGES, BACKENDS, log, texture(0), out)
    inp = find(checks, "stage_effect", "stage=inpaint")
    assert (inp.slice, inp.status, inp.value) == ("stage=inpaint effect=unchanged", "fail", 0.0)
    assert inp.note == "inpaint (fill) left all 576 px of the fill region unchanged"
    den = find(checks, "stage_effect", "stage=denoise")
    assert (den.slice, den.status) == ("stage=denoise effect=unchanged", "fail")
    assert den.note == "denoise (nl, strength 0.5) returned its input unchanged"
    # strength 0 is "off by configuration": identical bytes are what it promises
    log, out = run_log(denoise_strength=0.0, denoise_changes=False)
    den = find(evaluate(vector(), STAGES, BACKENDS, log, texture(0), out), "stage_effect", "stage=denoise")
    assert (den.slice, den.status, den.note) == ("stage=denoise effect=off", "pass",
                                                 "denoise (nl, strength 0) is off by configuration")


def test_an_upscaler_that_keeps_the_size_fails():
    log, out = run_log(upscale=1)
    up = find(evaluate(vector(), STAGES, BACKENDS, log, texture(0), out), "stage_effect", "stage=upscale")
    assert (up.slice, up.status, up.value, up.baseline) == ("stage=upscale effect=unchanged", "fail", 1.0, 1.0)
    assert up.note == "upscale (lanczos) returned a 64x64 image from the 64x64 input"


def test_only_the_stages_the_pipeline_names_are_checked():
    log, out = run_log()
    checks = evaluate(vector(), ("detect", "mask", "inpaint"), BACKENDS, log, texture(0), out)
    assert [c.slice.split()[0] for c in checks if c.metric == "stage_effect"] == ["stage=detect", "stage=mask",
                                                                                   "stage=inpaint"]


# --- [expect] keys ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("recall,bound,status", [(0.4, None, "fail"), (0.5, None, "pass"), (0.6, 0.9, "fail"),
                                                 (0.95, 0.9, "pass")])
def test_min_detect_recall(recall, bound, status):
    log, out = run_log()
    log.recall = recall
    ex = {} if bound is None else {"min_detect_recall": bound}
    c = find(evaluate(vector(ex), STAGES, BACKENDS, log, texture(0), out), "expect", "min_detect_recall")
    want = DEFAULT_MIN_DETECT_RECALL if bound is None else bound
    assert (c.slice, c.value, c.baseline, c.tolerance, c.status) == ("min_detect_recall stage=detect", recall, want,
                                                                     0.0, status)
    assert c.note == f"detect recall {recall:.3f} {'>=' if status == 'pass' else '<'} min_detect_recall {want:g}"


def test_max_mask_coverage():
    log, out = run_log()  # fill region 576 px = 0.140625 of the image
    c = find(evaluate(vector(), STAGES, BACKENDS, log, texture(0), out), "expect", "max_mask_coverage")
    assert (c.slice, c.value, c.baseline, c.status) == ("max_mask_coverage stage=mask", 0.140625, 0.12, "fail")
    assert c.note == "the fill region covers 0.141 of the image > max_mask_coverage 0.12"
    c = find(evaluate(vector({"max_mask_coverage": 0.15}), STAGES, BACKENDS, log, texture(0), out),
             "expect", "max_mask_coverage")
    assert (c.status, c.note) == ("pass", "the fill region covers 0.141 of the image <= max_mask_coverage 0.15")


@pytest.mark.parametrize("last_row,gap,status,where", [
    (41, 3.0, "pass", "is 3.0 px from anchor 0 (texture) >="),  # rows 42, 43 clear
    (42, 2.0, "pass", "is 2.0 px from anchor 0 (texture) >="),
    (43, 1.0, "fail", "is 1.0 px from anchor 0 (texture) <"),  # touching the anchor
    (50, 0.0, "fail", "overlaps anchor 0 (texture) (0 px) <"),
])
def test_min_anchor_gap_px_is_the_distance_from_the_fill_region_to_the_anchor(last_row, gap, status, where):
    log, out = run_log()
    log.fill = np.zeros((H, W), bool)
    log.fill[30:last_row + 1, 10:20] = True
    c = find(evaluate(vector({"min_anchor_gap_px": 2}), STAGES, BACKENDS, log, texture(0), out),
             "expect", "min_anchor_gap_px")
    assert (c.slice, c.value, c.baseline, c.status) == ("min_anchor_gap_px anchor=0", gap, 2.0, status)
    assert c.note == f"the fill region {where} min_anchor_gap_px 2"


def test_min_anchor_gap_px_is_skipped_when_nothing_was_filled():
    log, out = run_log(rejected="coverage 0.190 > max_coverage 0.12")
    c = find(evaluate(vector({"min_anchor_gap_px": 2}), STAGES, BACKENDS, log, texture(0), out),
             "expect", "min_anchor_gap_px")
    assert (c.status, c.value, c.note) == ("skip", None, "anchor 0 (texture): nothing was filled")


def test_upscale_expectation():
    log, out = run_log()
    c = find(evaluate(vector({"upscale": 2}), STAGES, BACKENDS, log, texture(0), out), "expect", "upscale")
    assert (c.slice, c.value, c.baseline, c.status) == ("upscale stage=upscale", 2.0, 2.0, "pass")
    assert c.note == "the output is 128x128, 2x the 64x64 vector"
    c = find(evaluate(vector({"upscale": 4}), STAGES, BACKENDS, log, texture(0), out), "expect", "upscale")
    assert (c.status, c.note) == ("fail", "the output is 128x128, not 4x the 64x64 vector")


# --- anchors_survive ----------------------------------------------------------------------------------------------

def scaled(img: np.ndarray, a: float) -> np.ndarray:
    """The texture around its mean scaled by ``a``: every band's amplitude times ``a``."""
    f = img.astype(np.float64)
    return np.clip(np.rint(f.mean() + a * (f - f.mean())), 0, 255).astype(np.uint8)


def test_retention_is_the_squared_gain_of_the_source_texture():
    clean = texture(0)
    box = [ANCHOR_BOX]
    [(same, allow, power)] = anchor_retention(clean, clean, box)
    assert same == pytest.approx(1.0)
    for a in (0.9, 0.6):
        [(kept, _, _)] = anchor_retention(clean, scaled(clean, a), box)
        assert kept == pytest.approx(a * a, abs=0.01)
    # other texture of the same energy (what PatchMatch copies in) keeps ~none of the source's texture
    [(kept, _, _)] = anchor_retention(clean, texture(7), box)
    assert kept < 0.02
    # the allowance: the visibility margin plus the noise floor of the source's fine-band power
    x0, y0, x1, y1 = ANCHOR_BOX
    std, bias = power_noise(np.array([power]), (x1 - x0) * (y1 - y0), float(band_gains(H, W)[2:].sum()), BENIGN_LSB)
    assert allow == pytest.approx((1 - ANCHOR_MIN_RETAINED) + (2 * bias[0] + NOISE_K * math.sqrt(2) * std[0]) / power)


def test_retention_accounts_for_the_upscale():
    import cv2

    clean = texture(0)
    big = cv2.resize(clean, (2 * W, 2 * H), interpolation=cv2.INTER_LANCZOS4)
    [(kept, _, _)] = anchor_retention(clean, big, [ANCHOR_BOX], "lanczos")
    assert kept == pytest.approx(1.0, abs=0.01)
    soft = cv2.resize(scaled(clean, 0.5), (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    [(kept, _, _)] = anchor_retention(clean, soft, [ANCHOR_BOX], "bicubic")
    assert kept == pytest.approx(0.25, abs=0.02)


def test_anchors_survive_check_passes_kept_texture_and_fails_lost_texture():
    log, _ = run_log()
    clean = texture(0)
    v = vector({"anchors_survive": True})
    ok = find(evaluate(v, STAGES, BACKENDS, log, clean, scaled(clean, 0.9)), "expect", "anchors_survive")
    assert (ok.slice, ok.baseline, ok.status) == ("anchors_survive anchor=0 band=high+top", 1.0, "pass")
    assert ok.value == pytest.approx(0.81, abs=0.01) and 0.5 < ok.tolerance < 0.6
    assert ok.note == (f"anchor 0 (texture) keeps {100 * ok.value:.1f}% of the source's high+top band energy "
                       f"(>= the {100 * (1 - ok.tolerance):.1f}% required)")
    bad = find(evaluate(v, STAGES, BACKENDS, log, clean, scaled(clean, 0.5)), "expect", "anchors_survive")
    assert bad.status == "fail" and bad.value == pytest.approx(0.25, abs=0.01)
    assert bad.delta == pytest.approx(bad.value - 1.0) and -bad.delta > bad.tolerance
    assert "(< the " in bad.note


def test_an_anchor_without_fine_texture_cannot_be_judged():
    log, _ = run_log()
    flat = np.full((H, W, 3), 128, np.uint8)
    c = find(evaluate(vector({"anchors_survive": True}), STAGES, BACKENDS, log, flat, flat), "expect",
             "anchors_survive")
    assert c.status == "skip" and "has no high+top texture above the noise floor" in c.note


# --- the CHECK rows -----------------------------------------------------------------------------------------------

def test_checks_are_contract_rows_with_an_optional_note():
    log, out = run_log(rejected="coverage 0.190 > max_coverage 0.12")
    checks = evaluate(vector(), STAGES, BACKENDS, log, texture(0), out)
    c = find(checks, "stage_effect", "stage=inpaint")
    d = c.to_dict()
    assert {k: d[k] for k in ("metric", "slice", "value", "baseline", "delta", "tolerance", "status")} == {
        "metric": "stage_effect", "slice": "stage=inpaint effect=skipped", "value": 0.0, "baseline": 0.0,
        "delta": 0.0, "tolerance": 0.0, "status": "fail"}
    assert d["note"] == "inpaint did not run: the mask was rejected (coverage 0.190 > max_coverage 0.12)"
    again = Check.from_dict(d)  # a reloaded report keeps the seven keys; the metric still marks it absolute
    assert (again.metric, again.slice, again.status) == (c.metric, c.slice, c.status) and is_expectation(again)
    assert isinstance(c, ExpectationCheck) and isinstance(c, Check)
    assert failure_note([again]) == "expectation failed: stage_effect [stage=inpaint effect=skipped]"


def test_the_check_metrics_are_not_in_the_registry_so_no_tolerance_rule_can_name_them():
    from harness.measuring.metrics import METRICS

    assert "expect" not in METRICS and "stage_effect" not in METRICS
