from harness.measuring.slices import SliceLayout, slice_name


def test_slice_names_are_stable_and_ordered():
    assert slice_name(ch="Y", band="high", tile="r3c5", region="ring") == "band=high tile=r3c5 region=ring ch=Y"
    assert slice_name() == "all"


def test_extra_keys_follow_the_standard_ones():
    assert slice_name(region="border", ch="Y", d="+1") == "region=border ch=Y d=+1"


def test_layout_lists_tiles_row_major_then_regions():
    layout = SliceLayout(2, 2, ("inside", "ring", "outside", "anchor"))
    assert len(layout) == 8
    assert [slice_name(**loc) for loc in layout.local] == [
        "tile=r0c0", "tile=r0c1", "tile=r1c0", "tile=r1c1",
        "region=inside", "region=ring", "region=outside", "region=anchor"]
    assert SliceLayout(2, 2, ("anchor",)) == SliceLayout(2, 2, ("anchor",))  # hashable cache key
    assert hash(SliceLayout(3, 1)) == hash(SliceLayout(3, 1))
