"""``harness run --resume DIR``: reopening an interrupted run folder, checked against the suite and
options of the new run, with the cases it already recorded (see :mod:`harness.run.runner`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.suite.baselines import BaselineStore
from harness.run.case import CaseOutput
from harness.run.rundir import RunFolder
from harness.suite.suites import Case, Suite
from harness.report.schema import CaseResult, Records, Report

__all__ = ["reopen", "outputs_from_records", "recorded_drift"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reopen(run_dir: Path, suite: Suite, planned: list[str],
           environment: dict[str, Any]) -> tuple[RunFolder, Report, Records]:
    """The interrupted run at ``run_dir``, locked, with its recorded cases, and its case records
    as read (:func:`outputs_from_records` takes them: the folder is read once); refused
    (ConfigError) when it is complete, still running, or of another suite, seeds, ``-k`` or
    baselines."""
    from harness.report.schema import load_report, read_case_records

    folder = RunFolder.reopen(run_dir)
    try:
        try:
            header = load_report(run_dir / "report.json")
        except HarnessError as exc:
            raise ConfigError(f"--resume {run_dir}: {exc}") from None
        if header.complete:
            raise ConfigError(f"--resume {run_dir}: the run is complete; nothing to resume")
        rec = header.environment
        problems = _mismatches(header, suite, planned, environment)
        if problems:
            raise ConfigError(f"--resume {run_dir}: " + "; ".join(problems) + ": start a new run instead")
        # measurements are read only where a distribution group compares the recorded seeds again
        records = read_case_records(run_dir, measurements=suite.mode == "distribution")
        cases = [records[cid][0] for cid in planned if cid in records]
        env = dict(rec)
        env["resumed"] = list(rec.get("resumed", [])) + [{"at": _now(), "executor": environment["executor"],
                                                          "workers": environment["workers"],
                                                          "timeout_s": environment["timeout_s"],
                                                          "recorded_before": len(cases)}]
        report = Report(header.run_id, header.suite, header.created, env, cases, planned=planned)
        report.notes.append(f"resumed at {env['resumed'][-1]['at']}: {len(cases)} of {len(planned)} cases were "
                            "recorded before, the rest were run now")
        moved = sorted(k for k in set(rec.get("versions", {})) | set(environment["versions"])
                       if rec.get("versions", {}).get(k) != environment["versions"].get(k))
        if moved:
            report.notes.append("resumed with other package versions than the run started with: " + ", ".join(
                f"{k} {rec.get('versions', {}).get(k)} -> {environment['versions'].get(k)}" for k in moved))
    except BaseException:
        folder.close()
        raise
    return folder, report, records


def outputs_from_records(records: Records, recorded: dict[str, CaseResult]) -> dict[str, CaseOutput]:
    """The outputs of the ``recorded`` seeds, rebuilt from their ``records`` (what :func:`reopen`
    read), so that a resumed distribution group compares them with the seeds run now."""
    out = {}
    for cid, (c, measurement) in records.items():
        if cid in recorded and c.seed is not None:
            out[cid] = CaseOutput(cid, measurement, c.stages, c.timings, c.artifacts, c.config,
                                  c.error if c.status == "error" else None)
    return out


def recorded_drift(store: BaselineStore, report: Report, todo: list[Case]) -> set[str]:
    """Environment drift of the cases recorded before a resume (their notes were not kept)."""
    from harness.errors import BaselineError
    from harness.run.judge import environment_drift

    fresh = {c.id for c in todo}
    drift: set[str] = set()
    for cid in [c for c in (report.planned or []) if c not in fresh]:
        try:
            base = store.load(cid)
        except BaselineError:
            continue
        if base is not None:
            drift.update(environment_drift(base.environment, report.environment))
    return drift


def _mismatches(header: Report, suite: Suite, planned: list[str], environment: dict[str, Any]) -> list[str]:
    """Why the run in ``header`` cannot be resumed with this suite and these options (none: it can)."""
    rec = header.environment
    problems = []
    if header.suite != suite.name:
        problems.append(f"it is a run of suite {header.suite!r}, not {suite.name!r}")
    elif rec.get("suite_digest") != environment["suite_digest"]:
        problems.append(f"suite {suite.path} (or one of its vectors) changed since the run started")
    for key, flag in (("seeds", "--seeds"), ("k", "-k"), ("judged", "judging")):
        if rec.get(key) != environment[key]:
            problems.append(f"it was run with {flag} {rec.get(key)!r}, not {environment[key]!r}")
    if rec.get("baselines") != environment["baselines"]:
        problems.append(f"it compared with the baselines in {rec.get('baselines')}, not {environment['baselines']} "
                        "(pass --baselines)")
    elif rec.get("baselines_digest") != environment["baselines_digest"]:
        problems.append(f"the baselines in {environment['baselines']} changed since the run started")
    if not problems and header.planned is not None and header.planned != planned:
        problems.append("the suite selects other cases now")
    return problems
