"""index.html: a run for people, rendered from Jinja2 templates (``harness/report/templates/``,
package data) with autoescaping, so nothing a report holds reaches the page unescaped.

Top: the verdict and counts (an incomplete run says so first, and never reads as a pass), what
changed since the baselines (:func:`~harness.report.whatchanged.run_changes`), the environment,
the notes.  Then the cases grouped by vector × pipeline, seeds folded, failures first and
passing groups collapsed, with a small inline script (templates/page.js) that filters by status,
searches ids/metrics/slices and sorts; each case that did not pass shows what changed, its worst
checks, its labelled stage strip and its figures (:func:`~harness.report.figures.case_figures`).
Self-contained: one file, no network; images are links to files beside it (the run folder, the
image store, or a bundle's ``images/``), lazy-loaded.

Links: :mod:`harness.report.html_links` (an artifact is a link only inside the run folder or in
its image store; anything else is text).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.report.figures import tile_checks
from harness.report.html_cases import RANK, case_groups, cross_rows, sev_text
from harness.report.html_links import artifact_href
from harness.report.markdown import verdict
from harness.report.schema import Report
from harness.report.whatchanged import run_changes

__all__ = ["index_html", "artifact_href", "tile_checks", "environment_rows"]  # tile_checks: from figures

#: Environment keys shown first, in this order; the rest go under "more".
MAIN_ENVIRONMENT = ("device", "threads", "threads_applied", "executor", "workers", "git_sha", "python",
                    "platform", "versions", "seeds")
LINE_ENVIRONMENT = ("device", "threads", "executor", "workers", "git_sha", "python")


@lru_cache(maxsize=1)
def _templates():
    """The Jinja2 environment over the package's templates (autoescaping everything, undefined names
    an error so that a template typo fails the render, not the reader)."""
    from harness.report.templating import environment

    env = environment()
    env.globals.update(sevtext=sev_text, sevnum=lambda s: "1e9" if s == math.inf else f"{s:.4g}")
    return env


def _static(name: str):
    """A template folder file inlined verbatim (page.css, page.js): not a template, so braces in the
    script never read as Jinja syntax."""
    from markupsafe import Markup

    env = _templates()
    return Markup(env.loader.get_source(env, name)[0])


def _value_text(value: Any) -> str:
    """An environment value in one line: ``numpy 2.4.6, torch 2.13.0`` for a mapping."""
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value_text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(_value_text, value)) or "—"
    return str(value)


def environment_rows(environment: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """``{"line": text, "main": [(key, text)], "more": [...]}``: the environment as the page lists it,
    ``line`` the one-line summary (device, threads, executor, git sha, python), ``main`` versions, device,
    threads, git sha, executor first and ``more`` the rest."""
    main = [(k, _value_text(environment[k])) for k in MAIN_ENVIRONMENT if k in environment]
    more = [(str(k), _value_text(v)) for k, v in environment.items() if k not in MAIN_ENVIRONMENT]
    line = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in main if k in LINE_ENVIRONMENT)
    return {"line": line or "not recorded", "main": main, "more": more}


def index_html(report: Report, run_dir: Path) -> str:
    """The page of ``report`` (whose run folder is ``run_dir``: links are relative to it, and the
    figures of its failing cases are written under it)."""
    groups = case_groups(report, Path(run_dir))
    seen = [r.status for g in groups for r in g.rows]
    statuses = [(s, seen.count(s)) for s in sorted(set(seen), key=RANK.__getitem__)]
    return _templates().get_template("index.html.j2").render(
        report=report, verdict=verdict(report), summary=report.summary, changes=run_changes(report),
        environment=environment_rows(report.environment), groups=groups, statuses=statuses,
        cross=cross_rows(report, Path(run_dir)), css=_static("page.css"), js=_static("page.js"))
