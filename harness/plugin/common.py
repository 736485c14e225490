"""What every part of the plugin shares: the session's stash key, path display, run-id stamps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.naming import RUN_STAMP_FORMAT as STAMP_FORMAT  # run ids as `harness run` names them

if TYPE_CHECKING:
    from harness.plugin.session import HarnessSession

__all__ = ["SESSION_KEY", "STAMP_FORMAT", "get_session", "show_path"]

SESSION_KEY: pytest.StashKey[HarnessSession] = pytest.StashKey()


def get_session(config: pytest.Config) -> HarnessSession | None:
    return config.stash.get(SESSION_KEY, None)


def show_path(path: Path | str, rootpath: Path) -> str:
    """``path`` relative to the rootdir when it is inside it (as pytest shows paths)."""
    try:
        return Path(path).relative_to(rootpath).as_posix()
    except ValueError:
        return str(path)
