"""index.html in a real browser (headless Chromium, Debian's ``chromium``): no console error on a
failing run's page or on a 1,000-case page, the 1,000-case page ≤ 5 MB and ready within 2 s, no
horizontal scroll in a 1,280 px window, and the filter/search/sort script doing what it says.

Skipped only when chromium is not installed.  The screenshot of a failing case is written to
``$HARNESS_SCREENSHOT_DIR`` when set (else the test's tmp folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.report.render import render_report

from chromium_cdp import Browser, chromium
from html_runs import synthetic_run

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (/usr/bin/chromium): "
                                                           "index.html is not opened in a browser")

MAX_BYTES = 5 * 2**20  # issue 15: a 1,000-case run's page is at most 5 MB ...
MAX_READY_S = 2.0  # ... and ready within 2 s; measured about 0.15-0.5 s here on a loaded 2-core machine
FAILING = ("v3/p1", "v7/p2", "v20/p0", "v41/p3")  # 20 failing cases of the 1,000
ROOT = "document.documentElement"


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1280, height=1100) as b:
        yield b


@pytest.fixture(scope="module")
def big_page(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("big") / "run"
    report = synthetic_run(run, vectors=50, pipelines=4, seeds=5, failing=FAILING, erroring=("v9/p1",))
    assert len(report.cases) == 1000
    render_report(run)
    return run / "index.html"


@pytest.fixture(scope="module")
def failing_page(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("failing") / "run"
    synthetic_run(run, vectors=3, pipelines=2, seeds=3, failing=("v1/p0",), erroring=("v2/p1",), missing=2)
    render_report(run)
    return run / "index.html"


def state(browser: Browser) -> dict:
    return browser.eval(f"({{groups: +{ROOT}.dataset.groups, cases: +{ROOT}.dataset.cases, hash: location.hash,"
                        f" first: document.querySelector('#groups > details:not([hidden])')?.dataset.k ?? null,"
                        f" wide: {ROOT}.scrollWidth - {ROOT}.clientWidth, width: {ROOT}.clientWidth}})")


def test_the_failing_run_page_has_no_console_error_and_fits_1280px(browser, failing_page, tmp_path):
    browser.open(failing_page)
    assert browser.errors() == []
    s = state(browser)
    assert s["width"] <= 1280 and s["wide"] == 0  # no horizontal scroll
    assert (s["groups"], s["cases"], s["first"]) == (6, 18, "v2/p1")  # the errored group first
    # an incomplete run says so first, and never reads as a pass
    assert browser.eval("document.querySelector('p.incomplete').textContent").startswith(
        "INCOMPLETE RUN — NOT A PASS. 16 of 18 planned cases have results (2 missing)")
    # the failing case's labelled stage strip, in pipeline order, its images loaded (no broken link)
    captions = browser.eval("[...document.querySelectorAll('details[open] > details.c[open] .strip figcaption')]"
                            ".map(e => e.textContent)")
    assert captions[-6:] == ["input", "detect_mask", "mask_mask", "inpaint", "denoise", "output"]
    loaded = browser.eval("Promise.all([...document.querySelectorAll('details.c[open] img')].map(i => "
                          "(i.loading = 'eager', i.decode().then(() => i.naturalWidth, () => -1))))")
    assert loaded and all(w > 0 for w in loaded), loaded
    assert browser.errors() == []  # every image it asked for was there
    browser.eval("document.querySelector('details.c[open]').scrollIntoView()")
    out = Path(os.environ.get("HARNESS_SCREENSHOT_DIR", tmp_path)) / "failing-case.png"
    assert browser.screenshot(out).stat().st_size > 10_000


def test_a_1000_case_page_is_small_and_ready_within_2s(browser, big_page):
    size = big_page.stat().st_size
    assert size <= MAX_BYTES, f"{size / 2**20:.2f} MB"
    load_s = browser.open(big_page)
    ready_ms = float(browser.eval(f"{ROOT}.dataset.ready"))  # performance.now() when the script is done
    print(f"\n1,000-case index.html: {size / 2**20:.2f} MB, load event after {load_s:.2f} s, "
          f"script ready at {ready_ms / 1000:.2f} s (limit {MAX_READY_S} s)")
    assert browser.errors() == []
    assert ready_ms / 1000 <= MAX_READY_S and load_s <= MAX_READY_S
    s = state(browser)
    assert (s["groups"], s["cases"], s["wide"]) == (200, 1000, 0)
    assert browser.eval("document.querySelectorAll('#groups > details[open]').length") == 5  # failing only
    assert browser.eval("document.querySelectorAll('details.c[open]').length") == 3  # html_cases.OPEN_DETAILS


@pytest.mark.parametrize("fragment, groups, cases, first", [
    ("#status=fail", 4, 20, "v20/p0"),
    ("#status=error,fail&sort=id", 5, 25, "v20/p0"),
    ("#q=v41/", 4, 20, "v41/p3"),  # the failing pipeline first
    ("#q=tile=r2c1", 4, 8, "v20/p0"),  # slices of failing checks: seeds 1 and 5 of each failing group
    ("#status=pass&q=tile=r2c1", 0, 0, None),
    ("#sort=time", 200, 1000, "v49/p0"),  # slowest first (time grows with the vector number)
    ("#sort=id&q=v1", 44, 220, "v1/p0"),  # v1, v10-v19
])
def test_the_hash_filters_searches_and_sorts(browser, big_page, fragment, groups, cases, first):
    browser.open(big_page, fragment)
    assert browser.errors() == []
    s = state(browser)
    assert (s["groups"], s["cases"], s["first"]) == (groups, cases, first)


def test_typing_a_search_filters_and_updates_the_hash(browser, big_page):
    browser.open(big_page)
    s = browser.eval("new Promise(done => { const q = document.getElementById('q'); q.value = 'V7/P2';"
                     " q.dispatchEvent(new Event('input')); setTimeout(() => done([+document.documentElement"
                     ".dataset.groups, location.hash]), 400); })")
    assert s == [1, "#q=v7%2Fp2"]
    s = browser.eval("(() => { const b = document.querySelector('input[name=status][value=pass]'); b.click();"
                     " return [+document.documentElement.dataset.cases, location.hash]; })()")
    assert s == [5, "#status=error%2Cfail&q=v7%2Fp2"]
    assert browser.errors() == []


def test_the_browser_check_sees_script_errors_and_missing_images(browser, tmp_path):
    """The 'no console error' assertions above can fail: a throwing script, console.error and a
    missing image are each reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><img src="nothere.png"><script>console.error("said so"); nope();</script>')
    browser.open(page)
    errors = browser.errors()
    assert any(e.startswith("exception: Uncaught ReferenceError: nope is not defined") for e in errors), errors
    assert "console.error: said so" in errors
    assert any(e.startswith("log error: Failed to load resource") and "nothere.png" in e for e in errors), errors
