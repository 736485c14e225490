"""Guide images for the guided upscaler (:mod:`harness.stages.guided`), built per case.

``guide = "stage:source"``: the vector's source photograph (``skimage`` or ``file``) fitted to the
upscale's *output* size -- the same centre crop as the pipeline's input, which is that photograph
fitted (Lanczos) down to the vector's ``size`` -- so it holds the detail the input lost.  The
source's ``blur`` is not applied: it models the low-resolution capture, not the scene.

Left out of the guidance (``Guide.exclude``), where the source does not show the input's content:
the overlays (their exact mask, > 0) -- the source shows what they hide, which the inpainter must
invent, not copy -- and the boxes of anchors whose content the vector draws (microprint, fine
print), which the photograph lacks.  What the pipeline's own mask removed is left out by the
backend (``ctx.mask``).

A source with no finer image is refused (a :class:`~harness.errors.ConfigError`, exit 2 when the
suite is loaded): a ``recipe`` (drawn at the vector's size), ``prompt`` or ``generated`` source, a
``fit = "crop"`` source (the input already is its native pixels), or a photograph whose crop is
no larger than the vector's size.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from harness.errors import ConfigError
from harness.stages.guide import Guide

__all__ = ["build_guide", "source_guide", "check_source", "check_suite_guides"]


def _cropped_source(vector) -> tuple[np.ndarray, tuple[int, int]]:
    """``vector``'s photograph after its ``crop``, and the (H, W) native pixels that the input's
    field of view spans (after ``fit = "resize"``'s centre crop to the vector's aspect); a
    ConfigError, naming the vector, when nothing finer than its size exists."""
    src = vector.source
    kind = src.get("kind")
    why = f"vector {vector.id!r}: upscale guide 'stage:source' needs a full-resolution source photograph"
    if kind not in ("skimage", "file"):
        raise ConfigError(f"{why}; its source is a {kind} (drawn or generated at {vector.size[1]}x{vector.size[0]}, "
                          f"nothing finer exists)")
    if src.get("fit", "resize") == "crop":
        raise ConfigError(f"{why}; its source is cropped at native resolution (fit = \"crop\"), nothing finer exists")
    from harness.suite.vectors.rendering import _as_rgb8, _source_raw

    raw = _as_rgb8(_source_raw(vector))
    if "crop" in src:
        x0, y0, x1, y1 = src["crop"]
        raw = raw[y0:y1, x0:x1]
    (rh, rw), (h, w) = raw.shape[:2], vector.size
    nh, nw = (max(1, round(rw * h / w)), rw) if rh * w > rw * h else (rh, max(1, round(rh * w / h)))
    if nh <= h or nw <= w:
        raise ConfigError(f"{why}; its source is {nw}x{nh} after cropping, no larger than the vector's {w}x{h}")
    return np.ascontiguousarray(raw), (nh, nw)


def check_source(vector) -> tuple[int, int]:
    """The (H, W) native pixels behind ``vector``'s input (see :func:`_cropped_source`)."""
    return _cropped_source(vector)[1]


def source_guide(vector, rendered, scale: int) -> Guide:
    """``stage:source`` for ``vector`` (rendered as ``rendered``) at ``scale`` times its size."""
    from harness.suite.vectors.rendering import _fit

    raw, (nh, nw) = _cropped_source(vector)
    h, w = vector.size
    image = _fit(raw, (h * scale, w * scale))  # the input's centre crop, Lanczos, at the output size
    hidden = np.asarray(rendered.overlay_mask) > 0
    for an in vector.anchors:
        if an.get("render"):  # content the vector draws: not in the photograph
            ax0, ay0, ax1, ay1 = an["box"]
            hidden[ay0:ay1, ax0:ax1] = True
    exclude = np.repeat(np.repeat(hidden, scale, axis=0), scale, axis=1)
    return Guide("stage:source", np.ascontiguousarray(image), exclude, {"source_px": f"{nw}x{nh}"})


def build_guide(backend, vector, rendered) -> Guide | None:
    """The guide ``backend`` asks for (its ``guide_stage``, see :class:`~harness.stages.guided.Guided`),
    or None for a backend that follows none."""
    stage = getattr(backend, "guide_stage", None)
    if stage is None:
        return None
    if stage == "source":
        return source_guide(vector, rendered, int(backend.params.scale))
    raise ConfigError(f"upscale guide 'stage:{stage}': no such guide; allowed: stage:source")


def check_suite_guides(where, pipelines: Sequence[Any], vectors: Mapping[str, Any]) -> None:
    """At suite load: every vector a pipeline with ``guide = "stage:source"`` runs on has a
    full-resolution source; else the ConfigError of :func:`check_source`, naming the pipeline's
    upscale stage (``where`` is the suite file's :class:`~harness.validate.Where`)."""
    for pl in pipelines:
        up = next((s for s in pl.stages if s.stage == "upscale"), None)
        if up is None or up.backend != "guided" or dict(up.params).get("guide") != "stage:source":
            continue
        for vid in pl.vectors or vectors:
            try:
                check_source(vectors[vid])
            except ConfigError as exc:
                raise where.at("pipelines").at(pl.name).error("upscale", str(exc)) from None
