"""Which report values index.html may turn into links, and how.

An artifact becomes a link (and a thumbnail) only when it is a relative path inside the run folder
(:func:`artifact_href`) or a store reference (``sha256:…``) whose object is in the run's image
store (:func:`store_href`, a path built from the validated hash, never from report text); anything
else -- ``javascript:...``, ``/etc/passwd``, ``../../x``, a symlink out of the folder -- is shown as
text.  An href is percent-encoded (``quote(path, safe="/")``), so it holds no character that HTML
treats specially; the templates escape it all the same (Jinja2 autoescaping).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from harness.run.store import REF_PREFIX, resolve_artifact

__all__ = ["artifact_href", "store_href", "why_not_linked"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # javascript:, data:, http:, C: ...


def artifact_href(path: str, run_dir: Path) -> str | None:
    """``path`` percent-encoded when it is a relative path inside ``run_dir`` (after resolving
    symlinks), else None: the view shows it as text, never as a link."""
    if (not isinstance(path, str) or not path or _SCHEME.match(path) or path.startswith("/")
            or "\\" in path or path != path.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
            or ".." in PurePosixPath(path).parts):
        return None
    root = Path(run_dir).resolve()
    try:
        (root / path).resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    return quote(path, safe="/")


def store_href(value: str, run_dir: Path, store_root: Path | None) -> str | None:
    """An artifact's href: a store reference links to its object in the run's image store (relative
    to the run folder; None when the object is not there); a relative path only when it stays inside
    the run folder (:func:`artifact_href`)."""
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        p = resolve_artifact(value, run_dir, store_root)
        return quote(os.path.relpath(p, Path(run_dir).resolve()), safe="/") if p is not None else None
    return artifact_href(value, run_dir)


def why_not_linked(value: object) -> str:
    """Why an artifact shows as text: the reason printed beside it."""
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        return "not in the image store (pruned, or another machine's store)"
    return "not a path inside the run folder"
