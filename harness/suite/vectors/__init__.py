"""Test vectors: codified failure cases, declared in ``vectors/<id>.toml``.

A vector is a source image (a real photograph from ``skimage.data``, a PNG file
next to the vector, a deterministic synthetic recipe, or a prompt for the
generate stage), overlays to remove (text, watermark, an object) drawn with
their exact ground-truth mask, texture *anchors* that must keep their
micro-texture (microprinting, fine print, fabric, texture), and expectations.
Rendering is deterministic: fonts are Pillow's bundled FreeType font
(``ImageFont.load_default(size=N)``), noise is seeded, resizing is Lanczos.

Where things are:

* :mod:`.schema`: the :class:`Vector` dataclass and the file format (an annotated
  example of every key), parsing and validation (:func:`load_vector`);
* :mod:`.recipes`: deterministic synthetic sources (receipt, security card) and the font;
* :mod:`.rendering`: source loading and fitting, anchor content, overlays, compositing,
  the render cache (:func:`render`, :class:`Rendered`, :func:`overlay_anchor_gap`);
* :mod:`.catalog`: finding vector files under the vector folders (:func:`discover`, :func:`get_vector`;
  a project's id shadows a built-in one: :func:`discover_shadowing`);
* :mod:`.summary`: what ``harness vectors show`` prints and writes (:func:`describe`, :func:`render_to_png`).

Everything public is importable from here.
"""

from __future__ import annotations

from harness.suite.vectors.catalog import discover, discover_shadowing, get_vector, shadowing_note
from harness.suite.vectors.recipes import RECIPES
from harness.suite.vectors.rendering import Rendered, overlay_anchor_gap, render
from harness.suite.vectors.schema import (
    ANCHOR_KINDS,
    DEFAULT_MAX_MASK_COVERAGE,
    MAX_SIZE,
    MIN_SIZE,
    OVERLAY_KINDS,
    SKIMAGE_PHOTOS,
    SOURCE_KINDS,
    Vector,
    load_vector,
)
from harness.suite.vectors.summary import describe, render_to_png

__all__ = ["Vector", "Rendered", "load_vector", "discover", "discover_shadowing", "shadowing_note", "get_vector",
           "render", "describe", "render_to_png", "overlay_anchor_gap", "SKIMAGE_PHOTOS", "RECIPES", "SOURCE_KINDS",
           "OVERLAY_KINDS", "ANCHOR_KINDS", "DEFAULT_MAX_MASK_COVERAGE", "MIN_SIZE", "MAX_SIZE"]
