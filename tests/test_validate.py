"""harness.validate: the one set of readers behind vector files, suites and backend parameters."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.validate import ParamWhere, Where, interval, is_int, is_number, read_toml

W = Where("f.toml")


def fails(message: str):
    """pytest.raises for exactly this one-line message."""
    return pytest.raises(ConfigError, match="^" + re.escape(message) + "$")


# --- predicates and wording --------------------------------------------------------------------------------------

def test_bool_is_never_an_int_or_a_number():
    assert is_int(3) and is_int(-1) and is_int(2**80)
    assert not is_int(True) and not is_int(False) and not is_int(3.0) and not is_int("3")
    assert is_number(3) and is_number(0.5) and is_number(-1e300)
    assert not is_number(True) and not is_number(False) and not is_number("1") and not is_number(None)


def test_numbers_are_finite():
    assert not is_number(math.nan) and not is_number(math.inf) and not is_number(-math.inf)
    assert not is_number(10**400)  # an int too large for a float is not a number (not an OverflowError)


def test_interval_notation():
    assert interval(0, 1) == "[0, 1]"
    assert interval(0, 1, lo_open=True) == "(0, 1]"
    assert interval(0, 100, lo_open=True, hi_open=True) == "(0, 100)"
    assert interval(None, 5) == "[-inf, 5]" and interval(1, None) == "[1, inf]"
    assert interval(1e-6, 0.25) == "[1e-06, 0.25]"


# --- where: the message shape -------------------------------------------------------------------------------------

def test_errors_name_the_file_and_the_dotted_key():
    assert str(W.error("size", "too big")) == "f.toml: size: too big"
    sub = W.at("source").at("params")
    assert sub.key("lobes") == "source.params.lobes"
    assert str(sub.error("lobes", "bad")) == "f.toml: source.params.lobes: bad"
    assert str(W.at("overlays[2]").error("kind", "x")) == "f.toml: overlays[2].kind: x"
    assert W.key("id") == "id"  # at() returns a new Where; W itself is unchanged


# --- keys -------------------------------------------------------------------------------------------------------

def test_keys_accepts_known_and_missing_keys():
    W.keys({}, ("a", "b"))
    W.keys({"b": 1}, ("a", "b"))


def test_unknown_key_lists_the_allowed_ones_in_their_order():
    with fails("f.toml: colour: unknown key; allowed: size, color, opacity"):
        W.keys({"size": 1, "zeta": 2, "colour": 3}, ("size", "color", "opacity"))  # the first unknown, sorted
    with fails("f.toml: source.seed: unknown key for kind 'skimage'; allowed: kind, name"):
        W.at("source").keys({"kind": "skimage", "seed": 3}, ("kind", "name"), what="kind 'skimage'")
    with fails("f.toml: pipelines.a.detekt: unknown stage; allowed: detect, mask"):
        W.at("pipelines").at("a").keys({"detekt": {}}, ("detect", "mask"), noun="stage")


# --- integer ----------------------------------------------------------------------------------------------------

def test_integer_accepts_the_boundaries():
    assert W.integer("n", 0, 0, 64) == 0
    assert W.integer("n", 64, 0, 64) == 64
    assert W.integer("n", -5) == -5
    assert W.integer("n", 10**30, 1) == 10**30


@pytest.mark.parametrize("value", [-1, 65, True, False, 1.5, 3.0, "3", None, [3]])
def test_integer_rejects(value):
    with fails(f"f.toml: n: expected an integer in 0..64, got {value!r}"):
        W.integer("n", value, 0, 64)


def test_integer_one_sided_and_unbounded_wording():
    with fails("f.toml: threads: expected an integer >= 1, got 0"):
        W.integer("threads", 0, 1)
    with fails("f.toml: n: expected an integer <= 9, got 10"):
        W.integer("n", 10, hi=9)
    with fails("f.toml: n: expected an integer, got 'x'"):
        W.integer("n", "x")


def test_integer_whole_floats():
    assert W.integer("n", 3.0, 2, 4, whole_floats=True) == 3
    assert isinstance(W.integer("n", 3.0, whole_floats=True), int)
    for bad in (2.5, math.nan, math.inf, True):
        with fails(f"f.toml: n: expected an integer in 2..4, got {bad!r}"):
            W.integer("n", bad, 2, 4, whole_floats=True)


@given(st.integers(-50, 50), st.integers(-20, 20), st.integers(0, 20))
def test_integer_accepts_exactly_the_ints_in_range(v, lo, width):
    hi = lo + width
    if lo <= v <= hi:
        assert W.integer("n", v, lo, hi) == v
    else:
        with fails(f"f.toml: n: expected an integer in {lo}..{hi}, got {v}"):
            W.integer("n", v, lo, hi)


@given(st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.none()))
def test_integer_rejects_every_non_int(v):
    with pytest.raises(ConfigError, match=r"^f\.toml: n: expected an integer in 0\.\.9, got "):
        W.integer("n", v, 0, 9)


# --- number -----------------------------------------------------------------------------------------------------

def test_number_bounds_closed_and_open():
    assert W.number("x", 0, 0.0, 1.0) == 0.0 and isinstance(W.number("x", 1, 0.0, 1.0), float)
    assert W.number("x", 1.0, 0.0, 1.0, lo_open=True) == 1.0
    with fails("f.toml: x: expected a number in (0, 1], got 0"):
        W.number("x", 0, 0.0, 1.0, lo_open=True)
    with fails("f.toml: x: expected a number in [0, 1], got 1.5"):
        W.number("x", 1.5, 0.0, 1.0)
    with fails("f.toml: compare.k: expected a number in (0, 100), got 100"):
        W.at("compare").number("k", 100, 0, 100, lo_open=True, hi_open=True)
    assert W.number("k", 99.9, 0, 100, lo_open=True, hi_open=True) == 99.9
    with fails("f.toml: x: expected a number > 0, got -1"):
        W.number("x", -1, 0, lo_open=True)


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "0.5", None])
def test_number_rejects_bool_non_finite_and_non_numbers(value):
    with fails(f"f.toml: x: expected a number in [0, 10], got {value!r}"):
        W.number("x", value, 0.0, 10.0)


@given(st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans()))
def test_number_accepts_exactly_finite_non_bool_numbers_in_range(v):
    ok = not isinstance(v, bool) and math.isfinite(v) and -1.0 < v <= 2.5
    if ok:
        assert W.number("x", v, -1.0, 2.5, lo_open=True) == float(v)
    else:
        with pytest.raises(ConfigError, match=r"^f\.toml: x: expected a number in \(-1, 2\.5\], got "):
            W.number("x", v, -1.0, 2.5, lo_open=True)


# --- boolean, string, choice --------------------------------------------------------------------------------------

def test_boolean():
    assert W.boolean("b", True) is True and W.boolean("b", False) is False
    for bad in (1, 0, "yes", "true", None):
        with fails(f"f.toml: b: expected true or false, got {bad!r}"):
            W.boolean("b", bad)


def test_string():
    assert W.string("s", "hi") == "hi"
    assert W.string("s", "", empty=True) == ""
    assert W.string("s", "a\nb", multiline=True) == "a\nb"
    with fails("f.toml: s: expected a non-empty string, got '  '"):
        W.string("s", "  ")
    with fails("f.toml: s: expected a non-empty string, got None"):
        W.string("s", None)
    with fails("f.toml: s: expected a string, got 3"):
        W.string("s", 3, empty=True)
    with fails("f.toml: s: expected a single-line string"):
        W.string("s", "a\r\nb")


def test_choice():
    assert W.choice("fit", "crop", ("resize", "crop")) == "crop"
    with fails("f.toml: fit: 'stretch' is not allowed; choose one of: resize, crop"):
        W.choice("fit", "stretch", ("resize", "crop"))
    with fails("f.toml: source.kind: 'http' is not a source kind; choose one of: skimage, file"):
        W.at("source").choice("kind", "http", ("skimage", "file"), "a source kind")
    with fails("f.toml: n: 3 is not allowed; choose one of: 1, 2"):
        W.choice("n", 3, (1, 2))
    with fails("f.toml: kind: None is not an overlay kind; choose one of: text"):
        W.choice("kind", None, ("text",), "an overlay kind")


# --- tables and lists ----------------------------------------------------------------------------------------------

def test_table_and_array_of_tables():
    assert W.table("expect", {"a": 1}) == {"a": 1}
    assert W.array_of_tables("overlays", []) == [] and W.array_of_tables("overlays", [{}]) == [{}]
    with fails("f.toml: expect: expected a table, got list"):
        W.table("expect", [1])
    with fails("f.toml: overlays: expected an array of tables ([[overlays]]), got str"):
        W.array_of_tables("overlays", "none")
    with fails("f.toml: overlays: expected an array of tables ([[overlays]]), got list"):
        W.array_of_tables("overlays", [{}, 3])


def test_ints_fixed_length():
    assert W.ints("color", [0, 128, 255], ("r", "g", "b"), 0, 255) == (0, 128, 255)
    assert W.ints("size", [64, 80], ("height", "width")) == (64, 80)
    for bad in ([255, 0, 256], [255, 0], [255, 0, 0, 0], [255, 0, True], [1.0, 0, 0], "red"):
        with fails(f"f.toml: color: expected [r, g, b] integers in 0..255, got {bad!r}"):
            W.ints("color", bad, ("r", "g", "b"), 0, 255)
    with fails("f.toml: size: expected [height, width] integers, got 64"):
        W.ints("size", 64, ("height", "width"))


def test_int_list():
    assert W.int_list("seeds", [1, 2, 3], 0, unique=True) == (1, 2, 3)
    assert W.int_list("xs", [1, 1]) == (1, 1)
    for bad in ([], [-1], [True], [1.0], "1", None):
        with fails(f"f.toml: seeds: expected a non-empty list of integers >= 0, got {bad!r}"):
            W.int_list("seeds", bad, 0, unique=True, items="seeds")
    with fails("f.toml: seeds: duplicate seeds in [1, 1]"):
        W.int_list("seeds", [1, 1], 0, unique=True, items="seeds")
    with fails("f.toml: xs: duplicate values in [2, 2]"):
        W.int_list("xs", [2, 2], unique=True)


# --- read_toml ----------------------------------------------------------------------------------------------------

def test_read_toml(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\n')
    assert read_toml(p, "suite") == ({"name": "x"}, b'name = "x"\n')
    with fails(f"{tmp_path / 'nope.toml'}: suite file not found"):
        read_toml(tmp_path / "nope.toml", "suite")
    with fails(f"{tmp_path}: is a directory, expected a vector .toml file"):
        read_toml(tmp_path, "vector")
    p.write_bytes(b'name = "\xff"\n')
    with fails(f"{p}: invalid TOML (not UTF-8)"):
        read_toml(p, "suite")
    p.write_text("name = [")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{p}: invalid TOML (") + r"[^\n]+\)$"):
        read_toml(p, "suite")


# --- backend parameters ---------------------------------------------------------------------------------------------

P = ParamWhere("denoise backend 'nlmeans'")


def test_params_are_worded_name_equals_value():
    w = P.param("a number [0, 1]")
    assert w.number("strength", 0.5, 0, 1) == 0.5
    with fails("denoise backend 'nlmeans': strength=1.5 is out of range; allowed: a number [0, 1]"):
        w.number("strength", 1.5, 0, 1)
    with fails("denoise backend 'nlmeans': strength='high' is invalid; allowed: a number [0, 1]"):
        w.number("strength", "high", 0, 1)
    with fails("denoise backend 'nlmeans': strength=True is invalid; allowed: a number [0, 1]"):
        w.number("strength", True, 0, 1)
    with fails("denoise backend 'nlmeans': mode=3 is invalid; allowed: one of: boxes, regions"):
        P.choice("mode", 3, ("boxes", "regions"))
    with fails("denoise backend 'nlmeans': n=9 is out of range; allowed: an integer in 0..4"):
        P.integer("n", 9, 0, 4)  # without param(): the reader's own expectation


def test_params_unknown_names_the_parameter():
    with fails("denoise backend 'nlmeans': unknown parameter 'sigma'; allowed: strength"):
        P.keys({"sigma": 3}, ("strength",), noun="parameter")
    with fails("denoise backend 'nlmeans': unknown parameter 'x'; allowed: (none)"):
        P.keys({"x": 1}, (), noun="parameter")


def test_the_same_reader_gives_the_same_verdict_in_both_styles():
    """A file key and a backend parameter fail on exactly the same values."""
    for v in (0, 4, 5, -1, True, 2.5, "2", None):
        file_ok = param_ok = True
        try:
            W.integer("n", v, 0, 4)
        except ConfigError:
            file_ok = False
        try:
            P.integer("n", v, 0, 4)
        except ConfigError:
            param_ok = False
        assert file_ok == param_ok == (v in (0, 4) and not isinstance(v, bool)), v
