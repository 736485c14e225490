"""Helpers for the vector tests: the shipped ids, a valid vector file to break, small image checks."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from harness.suite import vectors as V

PROMPT_VECTORS = ("generated_texture",)
GENERATED_VECTORS = ("gan_faces_caption",)  # source kind "generated": made by generate = face_gan
SHIPPED = ("caption_portrait", "fineprint_survive", "lowres_capture", "microprint_dilation", "photobomb_fill",
           "receipt_microprint", "watermark_grass")

BASE = """\
id = "bad"
description = "a valid vector that each error case breaks in one place"
tags = ["t"]
size = [64, 80]

[source]
kind = "recipe"
recipe = "security_card"
seed = 1

[[overlays]]
kind = "text"
text = "HI"
position = [4, 4]
size = 12
color = [255, 0, 0]

[[anchors]]
kind = "microprint"
box = [0, 40, 80, 50]
render = true

[expect]
anchors_survive = true
"""

S = 'kind = "recipe"\nrecipe = "security_card"\nseed = 1'  # BASE's [source] body
OV = 'kind = "text"\ntext = "HI"\nposition = [4, 4]'  # the start of BASE's overlay
OVB = OV + '\nsize = 12\ncolor = [255, 0, 0]'  # all of BASE's overlay
AN = 'kind = "microprint"\nbox = [0, 40, 80, 50]\nrender = true'  # BASE's anchor


def write(tmp_path, text, name="bad"):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def gap(r) -> int:
    g = V.overlay_anchor_gap(r)
    assert g is not None
    return g


def dilate(mask: np.ndarray, r: float) -> np.ndarray:
    """Euclidean-disk dilation of a bool mask (what the mask stage's ``dilate_px`` does)."""
    return ndimage.distance_transform_edt(~mask) <= r
