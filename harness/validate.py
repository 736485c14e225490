"""Reading what users write: vector files, suites, tolerance files and backend parameters.

One place decides what counts as an integer, a number, a choice, a table ..., and how a
rejection reads.  Every problem is a one-line :class:`~harness.errors.ConfigError` of the form

    <file>: <dotted.key>: <what is wrong>

for example ``smoke.toml: measure.ring: expected an integer >= 1, got 0``.  A :class:`Where` is
the file plus the dotted key prefix of the table being read; its methods are the readers::

    w = Where(path)
    seed = w.integer("source.seed", raw.get("seed", 0), 0, 2**32 - 1)
    ov = w.at("overlays[0]")                         # keys below are "overlays[0].<key>"
    ov.keys(table, ("kind", "text", "size"), what="kind 'text'")
    size = ov.integer("size", table.get("size", 20), 4, 512)

Backend parameters have no file; :class:`ParamWhere` reads them with the same readers and
words a rejection ``<stage> backend '<name>': <param>=<value> is invalid; allowed: <allowed>``
(``... is out of range; ...`` for a value of the right type outside its range).

Python's ``bool`` is an ``int``; here it is never an integer nor a number.  A rejection
echoes the value as written.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path
from typing import Any, Sequence

from harness.errors import ConfigError

__all__ = ["Where", "ParamWhere", "read_toml", "is_int", "is_number", "interval"]


# --- predicates and wording --------------------------------------------------------------------------------------

def is_int(v: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """A finite ``int`` or ``float`` that is not a ``bool``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _within(v: Any, lo: float | None, hi: float | None, lo_open: bool = False, hi_open: bool = False) -> bool:
    return ((lo is None or (lo < v if lo_open else lo <= v))
            and (hi is None or (v < hi if hi_open else v <= hi)))


def interval(lo: float | None, hi: float | None, *, lo_open: bool = False, hi_open: bool = False) -> str:
    """``[0, 1]``, ``(0, 1]``, ``[1, inf]``: a range in interval notation; None is unbounded."""
    a = "-inf" if lo is None else f"{lo:g}"
    b = "inf" if hi is None else f"{hi:g}"
    return f"{'(' if lo_open else '['}{a}, {b}{')' if hi_open else ']'}"


def _bounds(lo: float | None, hi: float | None, *, lo_open: bool = False, hi_open: bool = False,
            integer: bool = False) -> str:
    """The range part of an expectation: `` in 0..64``, `` in (0, 1]``, `` >= 1``, or nothing."""
    fmt = str if integer else (lambda x: f"{x:g}")
    if lo is not None and hi is not None:
        return f" in {lo}..{hi}" if integer else f" in {interval(lo, hi, lo_open=lo_open, hi_open=hi_open)}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {fmt(lo)}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {fmt(hi)}"
    return ""


def read_toml(path: str | Path, what: str) -> tuple[dict[str, Any], bytes]:
    """Parse the TOML file ``path`` (a ``what`` file: "suite", "vector" ...) and return it with its
    bytes; every failure is one ConfigError naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: {what} file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a {what} .toml file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what} file ({exc.strerror})") from None
    try:
        return tomllib.loads(data.decode("utf-8")), data
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: invalid TOML (not UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({' '.join(str(exc).split())})") from None


# --- the readers ---------------------------------------------------------------------------------------------------

class Where:
    """A place in a configuration (a file, or any label, and a dotted key prefix) and its readers.

    Each reader takes the key (relative to the prefix) and the value, returns the value checked
    (numbers as float, lists as tuples) or raises a ConfigError ``"{path}: {prefix}{key}: {message}"``.
    """

    def __init__(self, path: str | Path, prefix: str = "") -> None:
        self.path, self.prefix = path, prefix

    def at(self, key: str) -> Where:
        """The table ``key`` below this one: ``Where(p).at("source").at("params")`` reads ``source.params.*``."""
        child = copy.copy(self)
        child.prefix = f"{self.prefix}{key}."
        return child

    def key(self, key: str) -> str:
        """The full dotted key."""
        return f"{self.prefix}{key}"

    # -- how a rejection reads (ParamWhere words these differently)

    def error(self, key: str, msg: str) -> ConfigError:
        """``"{path}: {prefix}{key}: {msg}"``, for any check without a reader of its own."""
        return ConfigError(f"{self.path}: {self.key(key)}: {msg}")

    def invalid(self, key: str, value: Any, expected: str, *, out_of_range: bool = False) -> ConfigError:
        """``value`` is not ``expected`` (e.g. "an integer in 0..64"); ``out_of_range``: of the right
        type but outside its range."""
        return self.error(key, f"expected {expected}, got {value!r}")

    def not_one_of(self, key: str, value: Any, allowed: Sequence[Any], what: str = "") -> ConfigError:
        return self.error(key, f"{value!r} is not {what or 'allowed'}; choose one of: {', '.join(map(str, allowed))}")

    def unknown(self, key: str, allowed: Sequence[str], what: str = "", noun: str = "key") -> ConfigError:
        scope = f" for {what}" if what else ""
        return self.error(key, f"unknown {noun}{scope}; allowed: {', '.join(allowed)}")

    # -- readers

    def keys(self, table: dict[str, Any], allowed: Sequence[str], *, what: str = "", noun: str = "key") -> None:
        """No key of ``table`` outside ``allowed`` (the first unknown one, alphabetically, is reported,
        with ``allowed`` in the order given).  ``what`` scopes the message: "unknown key for kind 'text'"."""
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise self.unknown(unknown[0], allowed, what, noun)

    def integer(self, key: str, v: Any, lo: int | None = None, hi: int | None = None, *,
                whole_floats: bool = False) -> int:
        """An integer in ``lo..hi`` (inclusive; None is unbounded).  ``whole_floats``: accept ``3.0`` as 3."""
        expected = "an integer" + _bounds(lo, hi, integer=True)
        if not (is_int(v) or (whole_floats and is_number(v) and float(v).is_integer())):
            raise self.invalid(key, v, expected)
        if not _within(v, lo, hi):
            raise self.invalid(key, v, expected, out_of_range=True)
        return int(v)

    def number(self, key: str, v: Any, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
        """A finite int or float in ``[lo, hi]`` (``lo_open``/``hi_open`` exclude an end), as a float."""
        expected = "a number" + _bounds(lo, hi, lo_open=lo_open, hi_open=hi_open)
        if not is_number(v):
            raise self.invalid(key, v, expected)
        if not _within(v, lo, hi, lo_open, hi_open):
            raise self.invalid(key, v, expected, out_of_range=True)
        return float(v)

    def boolean(self, key: str, v: Any) -> bool:
        if not isinstance(v, bool):
            raise self.invalid(key, v, "true or false")
        return v

    def string(self, key: str, v: Any, *, empty: bool = False, multiline: bool = False) -> str:
        """A string; non-blank unless ``empty``; one line unless ``multiline``."""
        if not isinstance(v, str) or (not empty and not v.strip()):
            raise self.invalid(key, v, "a string" if empty else "a non-empty string")
        if not multiline and ("\n" in v or "\r" in v):
            raise self.error(key, "expected a single-line string")
        return v

    def choice(self, key: str, v: Any, allowed: Sequence[Any], what: str = "") -> Any:
        """One of ``allowed``; ``what`` names them in the message ("'x' is not a source kind; ...")."""
        if v not in allowed:
            raise self.not_one_of(key, v, allowed, what)
        return v

    def table(self, key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.error(key, f"expected a table, got {type(v).__name__}")
        return v

    def array_of_tables(self, key: str, v: Any) -> list[dict[str, Any]]:
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            raise self.error(key, f"expected an array of tables ([[{self.key(key)}]]), got {type(v).__name__}")
        return v

    def ints(self, key: str, v: Any, names: Sequence[str], lo: int | None = None,
             hi: int | None = None) -> tuple[int, ...]:
        """A fixed-length list of integers, each in ``lo..hi``: ``names=("r", "g", "b")`` reads
        ``[r, g, b]``, and the message says "expected [r, g, b] integers in 0..255"."""
        if not (isinstance(v, list) and len(v) == len(names) and all(is_int(x) and _within(x, lo, hi) for x in v)):
            raise self.invalid(key, v, f"[{', '.join(names)}] integers" + _bounds(lo, hi, integer=True))
        return tuple(v)

    def int_list(self, key: str, v: Any, lo: int | None = None, hi: int | None = None, *,
                 unique: bool = False, items: str = "values") -> tuple[int, ...]:
        """A non-empty list of integers in ``lo..hi``; ``unique``: no repeats ("duplicate {items} in ...")."""
        if not (isinstance(v, list) and v and all(is_int(x) and _within(x, lo, hi) for x in v)):
            raise self.invalid(key, v, "a non-empty list of integers" + _bounds(lo, hi, integer=True))
        if unique and len(set(v)) != len(v):
            raise self.error(key, f"duplicate {items} in {v!r}")
        return tuple(v)


class ParamWhere(Where):
    """Backend parameters: the same readers, worded ``<label>: <name>=<value> is invalid; allowed: <allowed>``.

    ``label`` is e.g. ``"denoise backend 'nlmeans'"``; ``allowed`` describes the parameter being read
    (``"a number [0, 1]"``); :meth:`param` makes one per parameter.  Without it, a reader's own
    expectation is used.
    """

    def __init__(self, label: str, allowed: str = "") -> None:
        super().__init__(label)
        self.allowed = allowed

    def param(self, allowed: str) -> ParamWhere:
        return ParamWhere(str(self.path), allowed)

    def invalid(self, key: str, value: Any, expected: str, *, out_of_range: bool = False) -> ConfigError:
        why = "out of range" if out_of_range else "invalid"
        return ConfigError(f"{self.path}: {self.key(key)}={value!r} is {why}; allowed: {self.allowed or expected}")

    def not_one_of(self, key: str, value: Any, allowed: Sequence[Any], what: str = "") -> ConfigError:
        return self.invalid(key, value, "one of: " + ", ".join(map(str, allowed)))

    def unknown(self, key: str, allowed: Sequence[str], what: str = "", noun: str = "key") -> ConfigError:
        return ConfigError(f"{self.path}: unknown {noun} {self.key(key)!r}; allowed: {', '.join(allowed) or '(none)'}")
