"""The Jinja2 environment of every HTML view (index.html, diff.html, trend.html): the package's
``templates/`` folder (package data, found through the package, never a source path), autoescaping
everything, undefined names an error so that a template typo fails the render, not the reader."""

from __future__ import annotations

__all__ = ["environment"]


def environment(**extra):
    """A fresh environment over harness/report/templates/; ``extra`` goes to its filters (callables)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(extra)
    return env
