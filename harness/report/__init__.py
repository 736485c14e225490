"""Run reports: the report.json contract (:mod:`.schema`) and its rendered views."""

from harness.report.schema import SCHEMA_VERSION, CaseResult, Report, load_report

__all__ = ["SCHEMA_VERSION", "CaseResult", "Report", "load_report"]
