"""``harness baselines diff``: what a baseline change does, in words, case by case.

Which two versions it compares:

    harness baselines diff                    git HEAD → the working tree (the project's baselines folder)
    harness baselines diff REV                git REV → the working tree
    harness baselines diff REV_A REV_B        git REV_A → REV_B
    harness baselines diff PATH_A PATH_B      two baseline folders (a root or one suite's) or two files
    harness baselines diff --from-report DIR  the stored baselines → what `harness bake --from-report DIR` writes

``--suite NAME`` limits the git and folder forms to one suite's folder.  Both layouts of a
baseline file read (schema 1, one line; schema 2, one slice per line).  The words are
:mod:`harness.report.baselinediff`'s.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

from harness.cli.common import project_from_args, project_options
from harness.errors import ConfigError, InputError

__all__ = ["add_commands"]

_MANIFEST = "MANIFEST.json"


def _read(data: bytes, where: str) -> dict[str, Any]:
    from harness.suite.baselines.document import read_document

    try:
        return read_document(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: not a baseline document ({exc})") from None


def _folder(path: Path) -> dict[str, dict[str, Any]]:
    """``{case key: document}`` of a baseline folder (keys: paths inside it without ``.json``) or one file."""
    if path.is_file():
        doc = _read(path.read_bytes(), str(path))
        return {str(doc.get("case") or path.stem): doc}
    if not path.is_dir():
        return {}
    return {p.relative_to(path).as_posix()[:-5]: _read(p.read_bytes(), str(p))
            for p in sorted(path.rglob("*.json")) if p.name != _MANIFEST and not p.name.startswith(".")}


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise InputError(f"git {' '.join(args)}: {exc}") from None
    if out.returncode != 0:
        msg = out.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"git {' '.join(args)} (in {cwd}): {msg[-1] if msg else f'exit {out.returncode}'}")
    return out.stdout


def _at_revision(folder: Path, rev: str) -> dict[str, dict[str, Any]]:
    """``{case key: document}`` of ``folder`` as git revision ``rev`` has it ({} when it has none)."""
    where = folder.resolve()
    while not where.is_dir() and where != where.parent:
        where = where.parent
    top = Path(_git(["rev-parse", "--show-toplevel"], where).decode().strip()).resolve()
    rel = folder.resolve().relative_to(top).as_posix()
    names = [n for n in _git(["ls-tree", "-r", "--name-only", "-z", rev, "--", rel], top).decode().split("\0") if n]
    out = {}
    for name in names:
        if name.endswith(".json") and not name.endswith("/" + _MANIFEST) and name != _MANIFEST:
            key = name[len(rel) + 1:-5] if rel != "." else name[:-5]
            out[key] = _read(_git(["show", f"{rev}:{name}"], top), f"{rev}:{name}")
    return out


def _from_report(args: argparse.Namespace, project) -> tuple[dict, dict, str]:
    """The stored baselines of the report's suite, and the documents a bake of it would write."""
    from harness.cli.bake import _entries
    from harness.report.schema import load_report
    from harness.suite.baselines.document import baseline_document

    run_dir = Path(args.from_report)
    report = load_report(run_dir)
    folder = Path(project.baselines) / report.suite
    entries, _ = _entries(args, project, report, run_dir, [])
    new = {cid: baseline_document(cid, doc) for cid, doc in entries}
    old = {k: v for k, v in _folder(folder).items() if k in new}
    return old, new, f"{folder} → a bake of {run_dir}"


def _sides(args: argparse.Namespace, project) -> tuple[dict, dict, str]:
    """``(old, new, title)``: the two versions the arguments name."""
    refs = args.refs
    if args.from_report:
        if refs:
            raise ConfigError("--from-report: compares the stored baselines with a run; give no A B with it")
        return _from_report(args, project)
    if len(refs) == 2 and all(Path(r).exists() for r in refs):
        return _folder(Path(refs[0])), _folder(Path(refs[1])), f"{refs[0]} → {refs[1]}"
    existing = [r for r in refs if Path(r).exists()]
    if existing:
        raise ConfigError(f"{existing[0]}: two baseline folders or files are compared with each other, and git "
                          "revisions with each other or the working tree; give A and B of one kind")
    folder = Path(project.baselines) / (args.suite or "")
    if project.baselines_are_builtin and not args.baselines:
        raise ConfigError("no harness project here, so there is no baselines folder to compare in git: pass "
                          "--baselines DIR, --project PATH, or two folders")
    if len(refs) == 2:
        return _at_revision(folder, refs[0]), _at_revision(folder, refs[1]), f"{folder}: {refs[0]} → {refs[1]}"
    rev = refs[0] if refs else "HEAD"
    return _at_revision(folder, rev), _folder(folder), f"{folder}: {rev} → working tree"


def _ordered(keys: set[str]) -> list[str]:
    """Case keys sorted with seeds in numeric order (s2 before s10)."""
    def key(k: str):
        head, _, seed = k.rpartition("/")
        return (head, int(seed[1:]) if seed[1:].isdigit() else -1, seed)

    return sorted(keys, key=key)


def _cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.baselinediff import case_lines, diff_case, fold

    if len(args.refs) > 2:
        raise ConfigError(f"baselines diff: at most two versions (A B), got {len(args.refs)}")
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: expected >= 1")
    old, new, title = _sides(args, project_from_args(args))
    counts = {"changed": 0, "new": 0, "removed": 0, "unchanged": 0}
    print(f"baselines diff {title}")
    diffs = [diff_case(key, old.get(key), new.get(key), top=args.top) for key in _ordered(set(old) | set(new))]
    for d in diffs:
        counts[d.status] += 1
    shown = [d for d in diffs if d.status != "unchanged"]
    for label, d in (fold(shown) if not args.seeds else [(d.case, d) for d in shown]):
        print("\n".join(case_lines(d, label)))
    print(", ".join(f"{v} {k}" for k, v in counts.items()) + " case(s)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("baselines", help="baseline changes in words (diff)",
                       description="Commands on the project's baselines folder.")
    bs = p.add_subparsers(dest="baselines_command", metavar="SUBCOMMAND", required=True)
    d = bs.add_parser("diff", parents=[project_options(vectors=False)],
                      help="what a baseline change does, case by case",
                      description=__doc__.split("\n\n", 1)[1].split("``--suite", 1)[0].strip(),
                      formatter_class=argparse.RawDescriptionHelpFormatter,
                      epilog="Per changed case: its largest value changes by slice group (a metric at one band and "
                             "region; relative for powers and amplitudes, old → new for counts and levels), its "
                             "pipeline config changes, other record changes, and the approval (who, when, why, run) "
                             "the new version brought. Exit codes: 0 compared (changes or not); 2 a version that "
                             "cannot be read (not a git revision, not a baseline file).")
    d.add_argument("refs", nargs="*", metavar="A B", help="two folders or files, or one or two git revisions")
    d.add_argument("--suite", metavar="NAME", help="only this suite's folder (git and folder forms)")
    d.add_argument("--baselines", metavar="DIR", help="the baselines root (default: the project's)")
    d.add_argument("--from-report", metavar="DIR", help="the stored baselines against what a bake of this run writes")
    d.add_argument("-k", dest="k", metavar="EXPR", help="with --from-report: only the cases it selects")
    d.add_argument("--top", type=int, default=3, help="value changes said per case (default 3)")
    d.add_argument("--seeds", action="store_true",
                   help="one entry per seed (default: the seeds of a vector/pipeline whose change reads the same "
                        "are folded into one, said by the seed that moved most)")
    d.set_defaults(func=_cmd_diff)
