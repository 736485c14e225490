"""harness.suite.vectors.recipes: synthetic sources and the font."""

from __future__ import annotations

import numpy as np

from harness.suite.vectors.recipes import font


def test_fonts_are_pillows_bundled_freetype_font():
    from PIL import ImageFont

    f6, f28 = font(6), font(28)
    assert isinstance(f6, ImageFont.FreeTypeFont)
    assert f28.getbbox("VOID")[3] > 3 * f6.getbbox("VOID")[3]


def test_recipes_are_seeded_and_use_their_params():
    from harness.suite.vectors.recipes import RECIPES

    for name, recipe in RECIPES.items():
        defaults = {k: default for k, (_, default) in recipe.params.items()}
        a, b = recipe.fn((64, 80), 1, **defaults), recipe.fn((64, 80), 1, **defaults)
        assert a.shape == (64, 80, 3) and a.dtype == np.uint8, name
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, recipe.fn((64, 80), 2, **defaults)), name
    card = RECIPES["security_card"].fn
    assert not np.array_equal(card((64, 80), 1, period=3.1, lobes=7), card((64, 80), 1, period=6.0, lobes=7))
