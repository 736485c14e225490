"""``measure`` against the golden set written before its hot path was reworked for speed.

Every slice value, noise ``std`` and ``bias`` of five images (uint8, uint16 and
float64 input; odd and even sizes; soft, bool and uint8 masks; anchors; a tile
and ring other than the default) must equal the stored ones within 1e-9
relative: speed-ups may reorder float64 sums, nothing more.  See
``tests/measuring/golden.py``.
"""

import numpy as np
import pytest

from harness.measuring.driver import measure
from tests.measuring.golden import GOLDEN, cases, flatten, max_rel_diff


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("case", sorted(cases()))
def test_every_slice_value_matches_the_golden_set(golden, case):
    got = {f"{case}/{k}": v for k, v in flatten(measure(**cases()[case])).items()}
    want = {k: v for k, v in golden.items() if k.startswith(f"{case}/")}
    worst, where = max_rel_diff(want, got)
    assert worst <= 1e-9, f"{where}: relative difference {worst:.3g}"
    assert sum(v.size for k, v in got.items() if k.endswith("/values")) > 300


def test_the_comparison_sees_a_change_of_one_part_in_a_billion(golden):
    case = "u8_mask"
    want = {k: v for k, v in golden.items() if k.startswith(f"{case}/")}
    got = {k: v.copy() for k, v in want.items()}
    got[f"{case}/band_power/values"][7] *= 1 + 3e-9
    worst, where = max_rel_diff(want, got)
    assert where == f"{case}/band_power/values[7]" and worst == pytest.approx(3e-9, rel=1e-3)
    got[f"{case}/band_power/slices"] = got[f"{case}/band_power/slices"][::-1]
    with pytest.raises(AssertionError, match="slice names differ"):
        max_rel_diff(want, got)
