"""The ``harness`` command line (console script ``harness = harness.cli:main``)."""

from harness.cli.app import build_parser, main

__all__ = ["main", "build_parser"]
