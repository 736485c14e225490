"""Real tools against the visibility line: what a viewer sees at 1:1 must fail, what they cannot must pass.

Pairs come from ``real_tools`` (JPEG/WebP re-encodes, OpenCV non-local means and
bilateral, blur, resampling, unsharp masking, saturation/contrast, inpainting
with an over-dilated mask; benign: fresh jitter, +1 LSB, float32 vs float64,
PNG by two libraries).  Each is labelled by ``max_window_rms_change``: >= 3 LSB
must fail, <= 1.6 LSB must pass, in between no requirement.

The tolerance model's constants were chosen on the ``TUNE`` images; ``HELD_OUT``
checks that they carry over.  Held-out pairs the model misses are listed in
``KNOWN_MISSES`` (strict xfail: a pair that starts to pass the requirement
must be taken off the list).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import real_tools as rt

from harness.comparing.engine import compare_paired
from harness.measuring.driver import measure

pytest.importorskip("cv2")

# Held-out pairs below the requirement, with the severity of their worst check when the
# constants were frozen.  Both are energy-preserving changes of a heavy texture: non-local
# means re-synthesises grass from similar patches (band amplitude -8 %, while some 32-px window
# changes by 4.8 LSB RMS), JPEG q90 on ``camera`` leaves block edges just under a just-visible
# step over that texture.  Slice values cannot see a texture swapped for a similar one.
KNOWN_MISSES = {
    ("grass-256", "nlm", "h5"): 0.83,
    ("camera-256", "jpeg", "q90"): 0.96,
}


@lru_cache(maxsize=None)
def _measured(key: str, group: str, kind: str, strength: str):
    base, cand, mask = rt.pair(key, group, kind, strength)
    return _measure(base, mask), _measure(cand, mask)


_cache: dict[int, object] = {}


def _measure(img: np.ndarray, mask: np.ndarray | None):
    # baselines are shared by every pair of an image: measure each array once per session
    k = (id(img), id(mask))
    if k not in _cache:
        _cache[k] = (measure(img, mask), img, mask)  # keep the arrays alive so ids stay unique
    return _cache[k][0]


def _worst(key, group, kind, strength):
    mb, mc = _measured(key, group, kind, strength)
    checks = compare_paired(mb, mc)
    return max(checks, key=lambda c: c.severity)


def _verdicts(key):
    out = []
    for _, group, kind, strength in rt.all_pairs((key,)):
        sev = rt.severity(key, group, kind, strength)
        if rt.INVISIBLE < sev < rt.VISIBLE:
            continue  # between the lines: no requirement
        worst = _worst(key, group, kind, strength)
        out.append((kind, strength, sev, worst))
    return out


@pytest.mark.parametrize("key", rt.IMAGES)
def test_visible_changes_fail_and_invisible_ones_pass(key):
    wrong = []
    for kind, strength, sev, worst in _verdicts(key):
        if (key, kind, strength) in KNOWN_MISSES:
            continue
        failed = worst.status == "fail"
        if (sev >= rt.VISIBLE) != failed:
            wrong.append(f"{kind} {strength}: window change {sev:.2f} LSB, worst {worst.metric}[{worst.slice}] "
                         f"severity {worst.severity:.2f}")
    assert wrong == []


@pytest.mark.parametrize("key,kind,strength", sorted(KNOWN_MISSES))
def test_known_held_out_misses_are_still_misses(key, kind, strength):
    assert key in rt.HELD_OUT  # the tuning half has none
    sev = rt.severity(key, "regression", kind, strength)
    worst = _worst(key, "regression", kind, strength)
    assert sev >= rt.VISIBLE
    if worst.status == "fail":
        pytest.fail(f"{key} {kind} {strength} now fails (severity {worst.severity:.2f}): drop it from KNOWN_MISSES")
    assert worst.severity == pytest.approx(KNOWN_MISSES[key, kind, strength], abs=0.1)


def test_benign_changes_stay_well_inside_the_tolerance():
    """Fresh jitter, +1 LSB, float32 vs float64, PNG by two libraries: worst check at most 0.75 of its tolerance."""
    worst = []
    for key in rt.IMAGES[::2]:  # every other image keeps this quick; the parametrized test sees them all
        for _, group, kind, strength in rt.all_pairs((key,)):
            if group == "benign":
                w = _worst(key, group, kind, strength)
                worst.append((w.severity, key, kind, w.metric, w.slice))
    assert max(worst)[0] < 0.75, max(worst)


def test_the_labels_span_both_sides_of_the_line():
    """The set has visible and invisible pairs of most kinds, so neither side is tested empty."""
    sev = {(k, g, kind, s): rt.severity(k, g, kind, s) for k, g, kind, s in rt.all_pairs(rt.IMAGES[:4])}
    visible = {kind for (k, g, kind, s), v in sev.items() if g == "regression" and v >= rt.VISIBLE}
    invisible = {kind for (k, g, kind, s), v in sev.items() if g == "regression" and v <= rt.INVISIBLE}
    assert {"jpeg", "webp", "nlm", "blur", "resample", "unsharp"} <= visible
    assert len(invisible) >= 3
    assert all(v <= rt.INVISIBLE for (k, g, kind, s), v in sev.items() if g == "benign")


def test_max_window_rms_change_is_the_worst_32px_window():
    a = np.zeros((64, 80, 3), np.uint8)
    b = a.copy()
    b[10:42, 20:52] = 3  # one 32x32 window changed by 3 on every channel
    assert rt.max_window_rms_change(a, b) == pytest.approx(3.0)
    c = a.copy()
    c[10:26, 20:36] = 4  # a 16x16 patch: diluted to a quarter of the window's energy
    assert rt.max_window_rms_change(a, c) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    img = rng.integers(2, 254, (96, 96, 3)).astype(np.uint8)
    two = rt.max_window_rms_change(rt.jitter(img, 1), rt.jitter(img, 2))
    assert 1.3 < two < 1.6  # two renders with fresh +-1 LSB jitter: about 1.4
