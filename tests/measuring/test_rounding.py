"""round_values (vectorised) equals round_value (per value, the reference) bit for bit."""

import struct

import numpy as np
import pytest

from harness.measuring.result import Measurement, MetricValues, round_value, round_values


def _bits(xs):
    return [struct.pack("<d", x) for x in xs]


def _samples() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 50_000
    exact = 10.0 ** np.arange(-25, 26)
    return {
        "normal": rng.normal(size=n),
        "magnitudes": rng.normal(size=n) * 10.0 ** rng.integers(-30, 30, n),
        "full range": np.exp(rng.uniform(-700, 700, n)) * rng.choice([-1.0, 1.0], n),
        "8-digit decimals": rng.integers(10_000_000, 99_999_999, n) * 10.0 ** rng.integers(-20, 20, n),
        "ties at 7 digits": (rng.integers(10**6, 10**7, n) + 0.5) * 10.0 ** rng.integers(-12, 12, n),
        "ties at 3 digits": (rng.integers(100, 1000, n) + 0.5) * 10.0 ** rng.integers(-12, 12, n),
        "float32 values": rng.uniform(0, 1, n).astype(np.float32).astype(np.float64),
        "powers of ten and neighbours": np.concatenate([exact, np.nextafter(exact, 0), np.nextafter(exact, np.inf)]),
        "edges": np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, -5e-324, 2.2250738585072014e-308,
                           1.7976931348623157e308, -1.7976931348623157e308, 0.5, 1.0, 9999999.5, 9999999.4999,
                           99999995.0, 0.99999995, 0.999999949999, 999.5, 0.9995, 123456.75, 1.00000005,
                           0.30000000000000004, 1e22, 1e23, 1e-22, 1e-23, -2.5, 0.125]),
    }


@pytest.mark.parametrize("digits", [7, 3, 1, 8, 15])
def test_round_values_is_round_value_bit_for_bit(digits):
    for name, values in _samples().items():
        want = [round_value(v, digits) for v in values.tolist()]
        got = round_values(values, digits)
        assert len(got) == len(want)
        bad = [(v, w, g) for v, w, g in zip(values.tolist(), want, got) if _bits([w]) != _bits([g])]
        assert bad == [], f"{name}, digits={digits}: {bad[:3]}"
        assert all(type(g) is float for g in got[:100])


def test_round_values_known_results():
    got = round_values(np.array([0.123456789, -1234567.89, 0.0, -0.0, 2.5e-9, 9999999.6]))
    assert got == [0.1234568, -1234568.0, 0.0, 0.0, 2.5e-9, 10000000.0]
    assert struct.pack("<d", got[3]) == struct.pack("<d", -0.0)  # -0.0 stays -0.0, as round_value keeps it
    assert np.isnan(round_values(np.array([np.nan]))[0])
    assert round_values(np.array([1.23456, 0.0004567]), 3) == [1.23, 0.000457]
    assert round_values(np.array([])) == []


def test_measurement_to_dict_rounds_as_before():
    rng = np.random.default_rng(3)
    vals = rng.normal(size=500) * 10.0 ** rng.integers(-6, 4, 500)
    mv = MetricValues(tuple(f"s{i}" for i in range(500)), vals, np.abs(vals) / 7, vals / 11)
    doc = Measurement({"m": mv}, {"tile": 64}).to_dict()["metrics"]["m"]
    assert _bits(doc["values"]) == _bits([round_value(v) for v in vals.tolist()])
    assert _bits(doc["std"]) == _bits([round_value(v, 3) for v in (np.abs(vals) / 7).tolist()])
    assert _bits(doc["bias"]) == _bits([round_value(v, 3) for v in (vals / 11).tolist()])
