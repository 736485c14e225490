"""The comparison engine catches what global gates miss, and never flags benign changes."""

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cases
from harness.comparing.distribution import compare_distribution
from harness.comparing.engine import CompareConfig, ToleranceRule, compare_paired, summarize_status
from harness.measuring.result import Measurement, MetricValues
from harness.measuring.driver import measure
from harness.measuring.metrics.reference import psnr, ssim

COLOURFUL = ("astronaut", "coffee", "chelsea", "rocket", "gradient", "texture")
ALL = cases.PHOTOS + ("gradient", "texture")
TEXTURED = ("astronaut", "coffee", "chelsea", "camera", "brick", "grass", "gravel", "rocket", "texture")


def _status(base, cand, mask=None):
    checks = compare_paired(measure(base, mask), measure(cand, mask))
    return summarize_status(checks), checks


def _which(name):
    # which injected regressions are meaningful for an image: hue needs colour,
    # texture loss needs texture, micro-tiling detection needs a spectrum not
    # already dominated by regular texture (grass)
    regs = dict(cases.REGRESSIONS)
    # hue drift needs colour -- and a colour that is not a zero-mean chroma texture: on
    # ``texture`` a 4 degree turn moves no 32-px window by more than 0.7 LSB RMS, below the
    # visibility line (tests/comparing/real_tools.py), where a pass is right
    if name not in COLOURFUL or name == "texture":
        regs.pop("hue_drift")
    if name not in TEXTURED:
        regs.pop("texture_loss"), regs.pop("flattened_patch"), regs.pop("over_denoise")
    if name == "grass":
        regs.pop("micro_tiling")
    return regs


@pytest.mark.parametrize("name", ALL)
def test_every_regression_fails(name):
    img = cases.image(name)
    mb = measure(img)
    passed = []
    for reg, fn in _which(name).items():
        if summarize_status(compare_paired(mb, measure(fn(img)))) != "fail":
            passed.append(reg)
    assert passed == []


@pytest.mark.parametrize("name", ALL)
def test_masked_regressions_fail(name):
    img = cases.image(name)
    mask = cases.default_mask(img)
    filled = cases.fill(img, mask)
    assert _status(filled, cases.seam(filled, mask, 6.0), mask)[0] == "fail"
    assert _status(filled, cases.seam(filled, mask, -6.0), mask)[0] == "fail"
    if name in TEXTURED:
        assert _status(filled, cases.over_dilated_fill(img, mask, 6), mask)[0] == "fail"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("benign", sorted(cases.BENIGN))
def test_no_benign_change_fails(name, benign):
    img = cases.image(name)
    status, checks = _status(img, cases.BENIGN[benign](img))
    worst = max(checks, key=lambda c: c.severity)
    assert status == "pass", f"{worst}"
    mask = cases.default_mask(img)
    filled = cases.fill(img, mask)
    assert _status(filled, cases.BENIGN[benign](filled), mask)[0] == "pass"


def test_jittered_baseline_against_fresh_jitter_passes():
    img = cases.image("gravel")
    assert _status(cases.jitter(img, 3), cases.jitter(img, 4))[0] == "pass"


def test_global_gates_miss_what_slices_catch():
    """The mission's point: a local texture loss barely moves PSNR/SSIM but fails here."""
    img = cases.image("coffee")
    bad = cases.texture_loss(img)
    assert psnr(img, bad) > 32.0 and ssim(img, bad) > 0.98
    assert _status(img, bad)[0] == "fail"


def test_failing_checks_name_their_slice():
    img = cases.image("astronaut")
    _, checks = _status(img, cases.texture_loss(img))
    worst = max(checks, key=lambda c: c.severity)
    assert worst.status == "fail"
    assert worst.slice.startswith("band=") and " ch=Y" in worst.slice
    assert " tile=r" in worst.slice or worst.slice.endswith(" sub=" + worst.slice.rsplit("sub=", 1)[-1])
    assert worst.box is not None
    assert worst.delta < 0 and abs(worst.delta) > worst.tolerance


def _mv(values, std=0.0, bias=0.0, slices=("a", "b")):
    n = len(values)
    return MetricValues(tuple(slices[:n]), np.array(values, float), np.full(n, std), np.full(n, bias))


def test_direction_aware_periodic_only_fails_on_increase():
    base = Measurement({"periodic": _mv([1.0, 1.0])})
    up = Measurement({"periodic": _mv([2.0, 1.0])})
    down = Measurement({"periodic": _mv([0.0, 1.0])})
    assert [c.status for c in compare_paired(base, up)] == ["fail", "pass"]
    assert [c.status for c in compare_paired(base, down)] == ["pass", "pass"]


def test_nan_is_an_error_never_a_pass():
    base = Measurement({"band_power": _mv([1.0, 2.0])})
    cand = Measurement({"band_power": _mv([float("nan"), 2.0])})
    checks = compare_paired(base, cand)
    assert [c.status for c in checks] == ["error", "pass"]
    assert summarize_status(checks) == "error"
    assert checks[0].to_dict()["value"] is None


def test_missing_slice_is_an_error():
    base = Measurement({"band_power": _mv([1.0, 2.0])})
    cand = Measurement({"band_power": _mv([1.0])})
    checks = compare_paired(base, cand)
    assert [(c.slice, c.status) for c in checks] == [("a", "pass"), ("b", "error")]


def test_tolerance_rules_override_by_slice_glob():
    base = Measurement({"band_power": _mv([100.0, 100.0])})
    cand = Measurement({"band_power": _mv([108.0, 108.0])})
    assert [c.status for c in compare_paired(base, cand)] == ["pass", "pass"]  # rel 10 %
    cfg = CompareConfig(rules=(ToleranceRule("band_power", "b", rel_tol=0.05),))
    assert [c.status for c in compare_paired(base, cand, cfg)] == ["pass", "fail"]
    with pytest.raises(ValueError, match="direction must be one of"):
        ToleranceRule("band_power", direction="up")


def test_hue_is_skipped_where_chroma_is_too_low():
    grey = np.full((64, 64, 3), 120, np.uint8)
    checks = compare_paired(measure(grey), measure(cases.hue_drift(grey, 30.0)))
    hue = [c for c in checks if c.metric == "hue" and c.slice != "offset"]
    assert hue and all(c.status == "skip" for c in hue)


@given(st.sampled_from(["coffee", "brick", "gradient"]), st.sampled_from(sorted(cases.REGRESSIONS)))
def test_paired_comparison_is_symmetric(name, reg):
    img = cases.image(name, 64)
    a, b = measure(img), measure(cases.REGRESSIONS[reg](img))
    ab, ba = compare_paired(a, b), compare_paired(b, a)
    for x, y in zip(ab, ba):
        assert x.slice == y.slice
        if x.delta is not None:
            assert x.delta == pytest.approx(-y.delta, abs=1e-9)
            assert x.tolerance == pytest.approx(y.tolerance, rel=1e-9)
        if get_direction(x.metric) == "both":
            assert x.status == y.status


def get_direction(metric):
    from harness.measuring.metrics import get_metric

    return get_metric(metric).direction


def _seeds(img, n, offset=0):
    return [measure(cases.jitter(img, seed=offset + i)) for i in range(n)]


def test_distribution_mode_passes_new_seeds_and_fails_a_shift():
    img = cases.image("chelsea")
    base = _seeds(img, 4)
    assert summarize_status(compare_distribution(base, _seeds(img, 3, offset=10))) == "pass"
    drifted = [measure(cases.jitter(cases.hue_drift(img, 4.0), seed=20 + i)) for i in range(3)]
    assert summarize_status(compare_distribution(base, drifted)) == "fail"


def test_distribution_mode_needs_two_baseline_seeds():
    img = cases.image("chelsea", 64)
    with pytest.raises(ValueError, match="at least 2 baseline seeds"):
        compare_distribution(_seeds(img, 1), _seeds(img, 2))


def test_incomparable_measurements_raise():
    with pytest.raises(ValueError, match="differ in height"):
        compare_paired(measure(cases.image("coffee", 64)), measure(cases.image("coffee", 32)))


def test_check_severity_orders_errors_first_and_skips_last():
    from harness.comparing.engine import Check

    checks = [Check("m", "s", 1.0, 0.0, 1.0, 2.0, "pass"), Check("m", "s", None, None, None, None, "error"),
              Check("m", "s", 0.0, 0.0, 0.0, 180.0, "skip"), Check("m", "s", 3.0, 0.0, 3.0, 1.0, "fail")]
    ordered = sorted(checks, key=lambda c: c.severity, reverse=True)
    assert [c.status for c in ordered] == ["error", "fail", "pass", "skip"]
    assert math.isinf(ordered[0].severity)


@pytest.mark.parametrize("name,y0,x0", [("gravel", 64, 80), ("gravel", 300, 200), ("grass", 0, 0), ("grass", 200, 150),
                                        ("brick", 100, 250)])
def test_jitter_never_flags_strong_lines_near_the_peak_threshold(name, y0, x0):
    """Regression: a JPEG-block line in gravel sits right at the peak threshold; jitter
    pushes it over.  Its noise floor must account for lines that can cross."""
    from skimage import data

    img = getattr(data, name)()[y0:y0 + 256, x0:x0 + 256]
    img = np.repeat(img[..., None], 3, axis=2)
    a, b = measure(cases.jitter(img, 1)), measure(cases.jitter(img, 2))
    checks = compare_paired(a, b)
    worst = max(checks, key=lambda c: c.severity)
    assert summarize_status(checks) == "pass", worst


def test_periodic_noise_floor_covers_a_line_at_the_threshold():
    from skimage import data

    from harness.measuring.metrics.spectral import periodic_power

    img = data.gravel()[64:320, 80:336].astype(np.float32)
    rng = np.random.default_rng(0)
    draws = [periodic_power(img + rng.integers(-1, 2, img.shape), 1.25)[0][1] for _ in range(12)]
    std = periodic_power(img, 1.25)[1][1]
    assert np.std(draws) > 0.005  # the line really does flicker across the threshold
    assert std > 0.5 * np.std(draws)  # and the derived floor knows it


# --- where: boxes on spatial checks ------------------------------------------

def _blur_patch(img, y0, x0, side=40, sigma=2.5):
    from scipy import ndimage

    out = img.astype(np.float64).copy()
    for c in range(3):
        out[y0:y0 + side, x0:x0 + side, c] = ndimage.gaussian_filter(out[..., c], sigma)[y0:y0 + side, x0:x0 + side]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _overlaps(box, y0, x0, side=40):
    bx0, by0, bx1, by1 = box
    return min(bx1, x0 + side) > max(bx0, x0) and min(by1, y0 + side) > max(by0, y0)


@pytest.mark.parametrize("name,y0,x0", [("astronaut", 0, 72), ("astronaut", 180, 144), ("coffee", 108, 180),
                                        ("chelsea", 100, 100), ("brick", 200, 200), ("gravel", 10, 60),
                                        ("grass", 216, 0), ("rocket", 36, 216)])
def test_the_worst_failing_check_points_at_the_damage(name, y0, x0):
    img = cases.image(name)
    bad = _blur_patch(img, y0, x0)
    checks = compare_paired(measure(img), measure(bad))
    worst = max(checks, key=lambda c: c.severity)
    assert worst.status == "fail" and worst.box is not None, worst
    assert _overlaps(worst.box, y0, x0), (worst, (x0, y0, x0 + 40, y0 + 40))
    # the five worst failures all lie on the damage, and so does every failing unfiltered tile
    # (band-passed tiles can also react across the image border: the band filters are FFT-periodic)
    top = sorted((c for c in checks if c.status == "fail"), key=lambda c: c.severity, reverse=True)[:5]
    assert all(c.box is not None and _overlaps(c.box, y0, x0) for c in top), top
    local = [c for c in checks if c.status == "fail" and c.metric in ("contrast", "mean") and "tile=" in c.slice]
    assert all(_overlaps(c.box, y0, x0) for c in local)
    # the box reaches the report line and the JSON contract
    from harness.report.text import format_check

    x0b, y0b, x1b, y1b = worst.box
    assert f"] @ x {x0b}-{x1b}, y {y0b}-{y1b}: " in format_check(worst)
    assert worst.to_dict()["box"] == list(worst.box)


def test_region_checks_carry_the_region_box_and_whole_image_checks_none():
    img = cases.image("astronaut")
    mask = cases.default_mask(img)
    filled = cases.fill(img, mask)
    checks = compare_paired(measure(filled, mask), measure(cases.seam(filled, mask, 6.0), mask))
    inside = mask >= 0.5
    ys, xs = np.nonzero(inside)
    want = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    by_slice = {(c.metric, c.slice): c for c in checks}
    assert by_slice[("contrast", "region=inside ch=Y")].box == want
    assert by_slice[("band_power", "band=top ch=Y")].box is None
    assert by_slice[("hue", "offset")].box is None and "box" not in by_slice[("hue", "offset")].to_dict()
    seam = max((c for c in checks if c.metric.startswith("seam")), key=lambda c: c.severity)
    side = max(want[2] - want[0], want[3] - want[1])
    assert seam.status == "fail" and _overlaps(seam.box, want[1], want[0], side=side)


def test_check_box_is_optional_in_the_contract():
    from harness.comparing.engine import Check

    plain = Check("contrast", "ch=Y", 1.0, 2.0, -1.0, 0.5, "fail")
    assert plain.box is None and list(plain.to_dict()) == ["metric", "slice", "value", "baseline", "delta",
                                                           "tolerance", "status"]
    boxed = Check("contrast", "tile=r1c2 ch=Y", 1.0, 2.0, -1.0, 0.5, "fail", (64, 32, 128, 96))
    d = boxed.to_dict()
    assert list(d)[:7] == list(plain.to_dict()) and d["box"] == [64, 32, 128, 96]
    assert Check.from_dict(d) == boxed and Check.from_dict(plain.to_dict()) == plain
    assert Check.from_dict({**d, "box": "nonsense"}).box is None


def test_old_baselines_without_region_boxes_still_compare():
    img = cases.image("coffee", 128)
    mask = cases.default_mask(img)
    new = measure(img, mask)
    doc = new.to_dict()
    del doc["meta"]["region_boxes"]
    old = Measurement.from_dict(doc)
    checks = compare_paired(old, measure(cases.jitter(img), mask))
    assert summarize_status(checks) == "pass"
    inside = [c for c in checks if c.slice == "region=inside ch=Y"]
    assert inside and all(c.box == new.box("region=inside ch=Y") for c in inside)  # from the candidate
    both_old = compare_paired(old, old)
    assert all(c.box is None for c in both_old if "region=" in c.slice)
    assert any(c.box is not None for c in both_old if "tile=" in c.slice)


# --- hue: the global rotation -------------------------------------------------

def _ycc_to_rgb(y, cb, cr):
    r = y + cr / 0.713
    b = y + cb / 0.564
    return np.stack([r, (y - 0.299 * r - 0.114 * b) / 0.587, b], axis=2)


def _hsv_rotate(img, degrees):
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = rgb2hsv(img)
    hsv[..., 0] = np.mod(hsv[..., 0] + degrees / 360.0, 1.0)
    return np.clip(np.rint(hsv2rgb(hsv) * 255.0), 0, 255).astype(np.uint8)


def _f32_vs_f64(img):
    """The same filter run in float64 and in float32: rounding differs in a few pixels."""
    from scipy import ndimage

    def run(dtype):
        x = img.astype(dtype)
        out = np.stack([ndimage.gaussian_filter(x[..., c], 1.0) for c in range(3)], axis=2)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    return run(np.float64), run(np.float32)


def _benign_pairs(img):
    return {"jitter": (img, cases.jitter(img, 0)), "jitter_again": (img, cases.jitter(img, 1)),
            "offset": (img, cases.offset(img, 1)), "offset_down": (img, cases.offset(img, -1)),
            "jitter_vs_jitter": (cases.jitter(img, 3), cases.jitter(img, 4)), "f32_vs_f64": _f32_vs_f64(img)}


_COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
COLOUR_SET = tuple(f"{n}-{v}" for n in _COLOUR_PHOTOS for v in ("256c", "256k", "512")) + ("immunohistochemistry-256c",)


@cache
def _colour_image(key):
    """Colourful photos: a centre crop (``256c``) and a corner crop (``256k``) at 256², and the whole
    photo's central square resized to 512² (``512``).  (``skimage.data.cat`` is ``chelsea``.)
    """
    from skimage import data
    from skimage.transform import resize

    name, variant = key.rsplit("-", 1)
    im = getattr(data, name)()[..., :3]
    h, w = im.shape[:2]
    if variant == "256c":
        return np.ascontiguousarray(im[(h - 256) // 2:(h + 256) // 2, (w - 256) // 2:(w + 256) // 2])
    if variant == "256k":
        return np.ascontiguousarray(im[:256, :256] if name != "rocket" else im[-256:, -256:])
    s = min(h, w)
    sq = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s].astype(np.float64)
    return np.clip(np.rint(resize(sq, (512, 512), anti_aliasing=True, preserve_range=True)), 0, 255).astype(np.uint8)


def _offset_check(checks):
    (c,) = [c for c in checks if c.metric == "hue" and c.slice == "offset"]
    return c


def test_rotation_estimate_recovers_a_known_rotation_within_its_stated_std():
    """Float images (no quantisation) with exactly the benign noise model: sigma = 1.25 code per RGB channel.

    With k = 1 and no floor, the offset check's tolerance is sqrt(2) * std: the std of the
    difference of two independent estimates, so (delta - truth) / tolerance is ~ N(0, 1).
    """
    h, w = 112, 150  # cells of 16 px with remainders: the exact propagation must handle them
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    phi = 2.0 * np.pi * (xx / w) + 1.5 * np.sin(yy / 17.0)
    rad = 18.0 + 10.0 * np.cos(yy / 23.0 + xx / 41.0)
    cfg = CompareConfig(k=1.0, rules=(ToleranceRule("hue", "offset", abs_tol=0.0),))
    rng = np.random.default_rng(0)
    for truth in (0.4, 7.0):
        t = np.radians(truth)
        base = _ycc_to_rgb(128.0, rad * np.cos(phi), rad * np.sin(phi))
        rot = _ycc_to_rgb(128.0, rad * np.cos(phi + t), rad * np.sin(phi + t))
        z = []
        for _ in range(40):
            b = (base + rng.normal(0.0, 1.25, base.shape)) / 255.0
            c = (rot + rng.normal(0.0, 1.25, rot.shape)) / 255.0
            chk = _offset_check(compare_paired(measure(b, tile=32), measure(c, tile=32), cfg))
            z.append((chk.delta - truth) / chk.tolerance)
        z = np.array(z)
        assert np.all(np.abs(z) < 4.0)
        assert abs(z.mean()) < 0.5  # unbiased
        assert 0.7 < np.sqrt(np.mean(z**2)) < 1.3  # the stated std is the real one, not just a bound


def test_rotation_std_without_a_grid_is_a_bound_on_the_exact_one():
    img = cases.image("coffee")
    a, b = measure(img), measure(cases.hue_drift(img, 0.5))
    cfg = CompareConfig(k=1.0, rules=(ToleranceRule("hue", "offset", abs_tol=0.0),))
    exact = _offset_check(compare_paired(a, b, cfg))
    bound = _offset_check(compare_paired(Measurement(a.metrics, {}), Measurement(b.metrics, {}), cfg))
    assert bound.delta == exact.delta
    assert exact.tolerance <= bound.tolerance <= 2.5 * exact.tolerance


@pytest.mark.parametrize("name", COLOUR_SET)
def test_two_degrees_of_hue_rotation_fail_and_benign_changes_pass(name):
    img = _colour_image(name)
    mb = measure(img)
    for rotate in (cases.hue_drift, _hsv_rotate):
        for deg in (2.0, -2.0):
            checks = compare_paired(mb, measure(rotate(img, deg)))
            off = _offset_check(checks)
            assert off.status == "fail", (rotate.__name__, deg, off)
            assert off.tolerance < 1.2  # 1° floor + noise: the precision is there, not just the margin
    for benign, (a, b) in _benign_pairs(img).items():
        checks = compare_paired(measure(a), measure(b))
        worst = max(checks, key=lambda c: c.severity)
        assert summarize_status(checks) == "pass", (benign, worst)
        assert _offset_check(checks).severity < 0.1, benign


def _desaturated(img, keep):
    y = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(np.rint(y[..., None] + keep * (img - y[..., None])), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["camera", "desaturated", "grey_card"])
def test_grey_and_near_grey_images_are_exempt_from_the_rotation_check(name):
    if name == "camera":
        img = cases.image("camera")
    elif name == "desaturated":
        img = _desaturated(cases.image("astronaut"), 0.05)
    else:
        img = np.full((64, 64, 3), 120, np.uint8)
    mb = measure(img)
    for cand in (cases.hue_drift(img, 2.0), _hsv_rotate(img, 2.0), *(b for _, b in _benign_pairs(img).values())):
        off = _offset_check(compare_paired(mb, measure(cand)))
        assert off.status == "skip", off
    for a, b in _benign_pairs(img).values():
        assert summarize_status(compare_paired(measure(a), measure(b))) == "pass"


def test_a_failed_absolute_check_with_no_allowance_sorts_with_the_worst():
    from harness.comparing.engine import Check

    absolute = Check("expect", "min_detect_recall stage=detect", 0.2, 0.9, -0.7, 0.0, "fail")
    relative = Check("band_power", "band=high ch=Y", 3.0, 0.0, 3.0, 1.0, "fail")
    passed = Check("expect", "max_mask_coverage stage=mask", 0.05, 0.12, -0.07, 0.0, "pass")
    assert math.isinf(absolute.severity) and relative.severity == 3.0 and passed.severity == -1.0
    assert max([relative, passed, absolute], key=lambda c: c.severity) is absolute
