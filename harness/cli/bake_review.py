"""``harness bake``'s review: who approves a re-bake and why, and which baselines it rewrites.

**Approval.**  Every baseline a bake writes records who baked it (git ``user.name <user.email>``
of the repository holding the baselines folder, else the login name), when (UTC, ISO 8601),
why (``--reason``) and from which run (its id, and the git commit the run was made at).  A
document keeps the newest few, newest first, so the git diff of a re-bake shows the new
approval as an added line (:func:`harness.suite.baselines.document.with_approval`).

**When ``--reason`` is required** (exit 2 naming the option when it is missing):

* ``--force``: rewriting baselines that did not change beyond tolerance is a decision;
* ``--accept-failing`` when a case is actually baked failing its own expectations: the
  baseline then blesses a known failure, and the next reader must know why;
* in CI (``CI`` set to ``true``/``1``/``yes``, as GitHub Actions, GitLab and most services set
  it) when an existing baseline would change: nobody is at the terminal to say why later.

A local bake of new cases, or one that re-bakes after a change its author sees on screen, may
go without one: the approval then records who, when and the run, with ``reason`` null.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["baker", "approval_for", "in_ci", "check_reason", "require_reason_for_accepted", "require_reason_for_changes"]


def _git_config(key: str, where: Path) -> str:
    try:
        out = subprocess.run(["git", "config", key], capture_output=True, text=True, timeout=5, cwd=where)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (some containers)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


def baker(where: Path) -> str:
    """Who bakes: ``Name <email>`` (or either) from the git config of the repository holding
    ``where`` (the baselines folder, or its nearest existing parent), else the login name."""
    where = Path(where).resolve()
    while not where.is_dir() and where != where.parent:
        where = where.parent
    name, email = _git_config("user.name", where), _git_config("user.email", where)
    if name and email:
        return f"{name} <{email}>"
    return name or (f"<{email}>" if email else _login())


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def approval_for(report, reason: str | None, where: Path) -> dict:
    """The approval a bake from ``report`` records (see the module doc)."""
    from harness.suite.baselines.document import approval_entry

    env = getattr(report, "environment", None) or {}
    return approval_entry(baker(where), _now(), reason, getattr(report, "run_id", None), env.get("git_sha"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def check_reason(reason: str | None, *, force: bool) -> str | None:
    """``--reason`` stripped; a ConfigError when it is blank, or missing with ``--force``."""
    if reason is not None and not reason.strip():
        raise ConfigError("--reason: empty; say in a few words why these baselines change")
    if force and reason is None:
        raise ConfigError("--force rewrites baselines that did not change beyond tolerance: say why with "
                          "--reason TEXT (it is recorded in each baseline written)")
    return reason.strip() if reason is not None else None


def require_reason_for_accepted(reason: str | None, entries: list) -> None:
    """``--accept-failing`` baking a case that fails its expectations needs ``--reason``."""
    accepted = [cid for cid, e in entries if e.get("accepted_failing")]
    if accepted and reason is None:
        more = f" and {len(accepted) - 3} more" if len(accepted) > 3 else ""
        raise ConfigError(f"--accept-failing bakes {', '.join(accepted[:3])}{more} failing its own expectations: "
                          "say why with --reason TEXT (it is recorded in each baseline written); nothing was written")


def require_reason_for_changes(reason: str | None, changes: list) -> None:
    """In CI a bake that changes an existing baseline needs ``--reason`` (``changes``: a dry run's)."""
    changed = [str(c.case_id) for c in changes if c.action in ("changed", "removed")]
    if changed and reason is None and in_ci():
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise ConfigError(f"--reason: required in CI (CI={os.environ.get('CI')}) when existing baselines change "
                          f"({', '.join(changed[:3])}{more}); nothing was written")
