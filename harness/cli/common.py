"""What the pipeline commands share: the project (resolved once, at the edge) and suite options."""

from __future__ import annotations

import argparse
import sys

__all__ = ["project_options", "suite_options", "project_from_args", "load_suite_from_args", "say"]


def say(msg: str) -> None:
    """A progress line on stderr (stdout carries results)."""
    print(msg, file=sys.stderr, flush=True)


def project_from_args(args: argparse.Namespace, *, reports: str | None = None):
    """The project, resolved once from ``--project`` (or the working directory) and the folder flags."""
    from harness.project import load_project

    project = load_project(config_file=getattr(args, "project", None))
    return project.with_overrides(vectors=getattr(args, "vectors", None), baselines=getattr(args, "baselines", None),
                                  reports=reports, cache=getattr(args, "cache", None),
                                  store=getattr(args, "store", None))


def load_suite_from_args(args: argparse.Namespace, *, reports: str | None = None):
    from harness.suite.suites import load_suite

    project = project_from_args(args, reports=reports)
    return project, load_suite(args.suite, project=project)


def project_options(*, vectors: bool = True) -> argparse.ArgumentParser:
    """``--project`` and the folder overrides shared by every command that reads a project."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("project (default: found from the working directory upward, as pytest finds "
                             "its rootdir; see `harness init`)")
    g.add_argument("--project", metavar="PATH",
                   help="a harness.toml or pyproject.toml with [tool.harness], or its folder")
    if vectors:
        g.add_argument("--vectors", metavar="DIR", help="the project's vector folder (overrides the project file)")
    return p


def suite_options() -> argparse.ArgumentParser:
    """``--suite``, ``--seeds``, ``-k``, ``--workers``, ``--cache``, ``--baselines`` (run and bake)."""
    common = argparse.ArgumentParser(add_help=False, parents=[project_options()])
    common.add_argument("--suite", default=None,
                        help="suite name (searched in the project's suites, then the built-ins) or a path to a "
                             "suite TOML (default: the project's `suite`, else smoke)")
    common.add_argument("--seeds", help="seeds overriding the suite's: comma-separated, ranges allowed, e.g. 1,2 or 101-196")
    common.add_argument("-k", dest="k", metavar="EXPR",
                        help="only cases whose id (vector/pipeline/sSEED) matches: substrings with and/or/not")
    common.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    common.add_argument("--cache", default=None, metavar="DIR",
                        help="stage-output cache directory, keyed by content hash (default: the project's cache, "
                             "else ./.harness-cache)")
    common.add_argument("--store", default=None, metavar="DIR",
                        help="image store: every stage image once, by sha256, shared by runs and baselines "
                             "(default: the project's store, else ./.harness-store)")
    common.add_argument("--baselines", metavar="DIR",
                        help="baseline root folder (default: the project's baselines, else the built-in ones)")
    return common
