"""What differs between two runs besides their checks, for the top of ``harness diff``: the
environment (versions, device, threads, git sha, executor, suite and baselines digests), each
vector × pipeline's pipeline config (``mask.dilate_px 2 → 6``, :func:`~harness.report.whatchanged.change_text`
wording), the first stage whose image differs between the runs, and each side's ``diverged``
(:func:`~harness.report.whatchanged.diverged_text`)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from harness.report.diff_model import ConfigDiff
from harness.report.model import changed_params
from harness.report.whatchanged import change_text, diverged_text

if TYPE_CHECKING:
    from pathlib import Path

    from harness.report.diff_model import UnitDiff
    from harness.report.schema import CaseResult, Report

__all__ = ["config_diff", "flat_environment", "ENV_FIRST"]

#: Environment keys shown first (their differences matter most), then the rest in sorted order.
ENV_FIRST = ("device", "threads", "git_sha", "executor", "workers", "suite_digest", "baselines_digest", "python",
             "platform", "seeds", "k", "judged", "timeout_s")
#: Keys in brief when nothing differs.
ENV_BRIEF = ("device", "threads", "git_sha", "executor", "suite_digest")
_MISSING = "(absent)"


def flat_environment(env: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"versions": {"numpy": "2.1"}}`` → ``{"versions.numpy": "2.1"}``, every leaf as text."""
    out: dict[str, str] = {}
    for k, v in (env or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flat_environment(v, key + "."))
        else:
            out[key] = str(v)
    return out


def _env_order(key: str) -> tuple[int, int, str]:
    top = key.split(".")[0]
    if key in ENV_FIRST:
        return (0, ENV_FIRST.index(key), key)
    return (1 if top in ("versions", "threads_applied") else 2 if top != "project" else 3, 0, key)


def environment_diff(a: Report, b: Report) -> tuple[list[tuple[str, str, str]], list[str]]:
    fa, fb = flat_environment(a.environment), flat_environment(b.environment)
    diff = [(k, fa.get(k, _MISSING), fb.get(k, _MISSING)) for k in sorted(set(fa) | set(fb), key=_env_order)
            if fa.get(k) != fb.get(k)]
    shown = {k for k, _, _ in diff}
    same = [f"{k} {fa[k][:12] if k == 'git_sha' else fa[k]}" for k in ENV_BRIEF if k in fa and k not in shown]
    return diff, same


def _pipeline_changes(xs: list[CaseResult], ys: list[CaseResult]) -> list[str] | None:
    """The pipeline config changes A → B of one vector × pipeline over the seeds both ran, in
    :func:`change_text` words (each once); None when either side records no pipeline config."""
    by_seed = {c.seed: c for c in xs}
    out: list[str] = []
    pairs = [(by_seed[y.seed], y) for y in ys if y.seed in by_seed] or ([(xs[0], ys[0])] if xs and ys else [])
    for x, y in pairs:
        pa_, pb = x.config.get("pipeline"), y.config.get("pipeline")
        if not isinstance(pa_, dict) or not isinstance(pb, dict):
            return None
        # changed_params compares nothing with an empty baseline config: a placeholder stage makes it compare
        for ch in changed_params(pa_ or {"_": {}}, pb):
            t = change_text(ch)
            if t not in out:
                out.append(t)
    return out if pairs else None


def _baseline_changes(cases: list[CaseResult]) -> str:
    texts: list[str] = []
    for c in cases:
        for ch in c.changed:
            if change_text(ch) not in texts:
                texts.append(change_text(ch))
    return ", ".join(texts) or "none"


def _file_digest(p: Path | None) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p is not None else None


def first_image_change(x: CaseResult, y: CaseResult, dir_a: Path, dir_b: Path, store_a, store_b) -> str | None:
    """The first artifact, in pipeline order, whose image differs between the two cases: store
    references compare by hash, run-folder files by their bytes; None when all that both have agree."""
    from harness.run.store import is_ref, resolve_artifact

    for stage, va in x.artifacts.items():
        vb = y.artifacts.get(stage)
        if vb is None:
            continue
        if is_ref(va) and is_ref(vb):
            if va != vb:
                return stage
            continue
        da = _file_digest(resolve_artifact(va, dir_a, store_a))
        db = _file_digest(resolve_artifact(vb, dir_b, store_b))
        if da is not None and db is not None and da != db:
            return stage
    return None


def config_diff(a: Report, b: Report, units: list[UnitDiff], dir_a: Path | None = None,
                dir_b: Path | None = None) -> ConfigDiff:
    """The configuration difference of run B against run A; fills each unit's ``config``,
    ``first_image_change`` (for units whose cases changed) and ``diverged_a``/``diverged_b``."""
    from harness.report.diff_model import unit_of
    from harness.run.store import store_root_of

    res = ConfigDiff()
    res.environment, res.same = environment_diff(a, b)
    ca: dict[str, list[CaseResult]] = {}
    cb: dict[str, list[CaseResult]] = {}
    for side, rep in ((ca, a), (cb, b)):
        for c in rep.cases:
            side.setdefault(unit_of(c.id), []).append(c)
    grouped: dict[str, list[str]] = {}
    for u in units:
        xs, ys = ca.get(u.unit, []), cb.get(u.unit, [])
        changes = _pipeline_changes(xs, ys)
        if changes is None and xs and ys:
            was, now = _baseline_changes(xs), _baseline_changes(ys)
            changes = [] if was == now else [f"vs baseline: {was} → {now}"]
            if not any(c.config.get("pipeline") for c in xs + ys):
                res.notes.append(f"{u.unit}: no pipeline config recorded; compared what each run changed vs its baseline")
        u.config = changes or []
        for t in u.config:
            grouped.setdefault(t, []).append(u.unit)
        _images(u, xs, ys, (dir_a, dir_b, store_root_of(a.environment), store_root_of(b.environment)))
    res.pipeline = sorted(grouped.items(), key=lambda kv: -len(kv[1]))
    del res.notes[3:]  # one line per kind is enough; the rest say the same
    return res


def _images(u: UnitDiff, xs: list[CaseResult], ys: list[CaseResult], where: tuple) -> None:
    """The seed to show (B's worst, else one both ran, else B's first), its first differing image,
    each side's ``diverged`` words and B's error."""
    dir_a, dir_b, store_a, store_b = where
    by_a, by_b = {c.seed: c for c in xs}, {c.seed: c for c in ys}
    seed = u.worst_seed if u.worst_seed in by_b else next((s for s in by_b if s in by_a), next(iter(by_b), None))
    if seed is None and None not in by_b:
        return
    x, y = by_a.get(seed), by_b[seed]
    u.shown = (x, y)
    tag = f" (s{seed})" if seed is not None and seed >= 0 else ""
    u.diverged_a = diverged_text(x.diverged) + (tag if x.diverged else "") if x is not None else ""
    u.diverged_b = diverged_text(y.diverged) + (tag if y.diverged else "")
    if y.error:
        first = str(y.error).strip().splitlines()[0] if str(y.error).strip() else ""
        u.error_b = (first[:197] + "...") if len(first) > 200 else first
    if x is not None and u.changed and dir_a is not None and dir_b is not None:
        u.first_image_change = first_image_change(x, y, dir_a, dir_b, store_a, store_b)
