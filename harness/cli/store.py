"""``harness store``: the image store's size and its retention rule (``harness store prune``).

The rule (:meth:`harness.run.store.ImageStore.prune`): when the objects take more than the
project's ``store_max_mb``, the least recently used go first (used = put by a run or a bake),
down to 90 % of it; an object a baseline under the project's baselines folder references is
never removed.  ``harness run`` applies it after each run (also keeping the run's own images).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from harness.cli.common import project_from_args, project_options
from harness.errors import ConfigError

__all__ = ["add_commands", "prune_after_run"]

_RULE = ("Every stage image is stored once, by the sha256 of its PNG, and shared by runs and baselines. "
         "Retention: when the images take more than the project's store_max_mb (default 4096), the least "
         "recently used (put by a run or a bake) are removed, down to 90 % of it; an image that a baseline "
         "under the project's baselines folder references is never removed. `harness run` applies the rule "
         "after each run (also keeping that run's images); a report or view whose image was removed shows it "
         "as missing, never as an error.")


def _prune(project: Any, max_mb: int, keep: set[str], *, dry_run: bool = False):
    """``(store, bytes its objects take, PruneResult or None when within max_mb)``."""
    from harness.run.store import ImageStore, refs_in_baselines

    store = ImageStore(project.store_root)
    used = store.usage()
    if used <= max_mb * 2**20:  # the usual case: one scan, no baseline read
        return store, used, None
    return store, used, store.prune(max_mb * 2**20, keep | refs_in_baselines(project.baselines), dry_run=dry_run)


def prune_after_run(project: Any, report: Any) -> None:
    """The retention rule after ``harness run``: the run's own images and every baseline's are kept."""
    from harness.run.store import is_ref

    keep = {v for c in report.cases for v in (c.artifacts or {}).values() if is_ref(v)}
    try:
        store, _, result = _prune(project, project.store_max_mb, keep)
    except OSError as exc:  # the run is recorded; a store that cannot be pruned is worth a line, not a failure
        print(f"harness: warning: image store {project.store_root} not pruned ({exc})", file=sys.stderr)
        return
    if result is not None and result.removed:
        print(f"harness: image store {store.root}: removed {len(result.removed)} least recently used image(s) "
              f"({result.freed / 2**20:.1f} MB) to stay under store_max_mb = {project.store_max_mb}", file=sys.stderr)


def _cmd_prune(args: argparse.Namespace) -> int:
    project = project_from_args(args)  # --store and --baselines override the project's
    max_mb = project.store_max_mb if args.max_mb is None else args.max_mb
    if max_mb < 0:
        raise ConfigError(f"--max-mb {max_mb}: expected a number of megabytes >= 0")
    store, used, result = _prune(project, max_mb, set(), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    if result is None:
        print(f"image store {store.root}: {used / 2**20:.1f} MB, within {max_mb} MB: nothing to remove")
        return 0
    print(f"image store {store.root}: {verb} {len(result.removed)} image(s) ({result.freed / 2**20:.1f} MB); "
          f"{result.remaining / 2**20:.1f} MB left; {result.protected} kept as baselines' reference images")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from harness.run.store import ImageStore

    project = project_from_args(args)  # --store and --baselines override the project's
    objects = list(ImageStore(project.store_root).objects())
    size = sum(s for _, s, _ in objects)
    print(f"image store {project.store_root}: {len(objects)} image(s), {size / 2**20:.1f} MB "
          f"(store_max_mb = {project.store_max_mb})")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("store", help="the image store: its size (info) and retention (prune)",
                       description=_RULE)
    verbs = p.add_subparsers(dest="verb", metavar="{info,prune}", required=True)
    for name, func, text in (("info", _cmd_info, "how many images and megabytes the store holds"),
                             ("prune", _cmd_prune, "apply the retention rule now")):
        v = verbs.add_parser(name, parents=[project_options(vectors=False)], help=text, description=text)
        v.add_argument("--store", metavar="DIR", help="the image store (default: the project's store)")
        v.add_argument("--baselines", metavar="DIR", help="baseline root whose reference images are kept "
                                                          "(default: the project's baselines)")
        if name == "prune":
            v.add_argument("--max-mb", type=int, default=None,
                           help="the size bound in megabytes (default: the project's store_max_mb)")
            v.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
        v.set_defaults(func=func)
