"""``harness vectors list|show``: the test vectors a project can use."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import project_from_args, project_options
from harness.errors import ConfigError

__all__ = ["add_commands"]


def _cmd_vectors(args: argparse.Namespace) -> int:
    from harness.suite.vectors import describe, discover_shadowing, get_vector, render_to_png

    project = project_from_args(args)
    if args.action == "list":
        known, shadowed = discover_shadowing(project.vector_roots)
        for vid, vec in known.items():
            print(f"{vid:24} {vec.description}" + (f"  (shadows {shadowed[vid]})" if vid in shadowed else ""))
        return 0
    if not args.id:
        raise ConfigError("harness vectors show needs a vector ID (see `harness vectors list`)")
    vec = get_vector(args.id, project.vector_roots)
    print(describe(vec))
    if args.out:
        for p in render_to_png(vec, Path(args.out)):
            print(p)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("vectors", help="list test vectors or show one", parents=[project_options()],
                       description="`harness vectors list` lists the codified failure cases; "
                                   "`harness vectors show ID [--out DIR]` describes one and renders it to PNGs.")
    p.add_argument("action", choices=("list", "show"))
    p.add_argument("id", nargs="?")
    p.add_argument("--out", help="directory to render image.png, clean.png, overlay_mask.png, anchors.png into")
    p.set_defaults(func=_cmd_vectors)
