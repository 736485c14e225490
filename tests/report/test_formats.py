"""One schema for report.json and the case records: validated on load (exit 2 naming the field),
on write (a bug), and read so that nothing passes that should not."""

from __future__ import annotations

import json
import re
import typing

import pytest

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.report import format_v1, formats
from harness.report.schema import CaseResult, Report, case_record_text, load_report, read_case_records
from harness.status import STATUSES


def case(i: int = 1, status: str = "pass", check_status: str = "pass") -> CaseResult:
    return CaseResult(f"v/p/s{i}", "v", "p", i, status, None, {"denoise": 0.1},
                      {"output": f"artifacts/v__p__s{i}/o.png"},
                      [Check("band_power", "band=high ch=Y", 1.0, 1.0, 0.0, 0.5, check_status)])


def report_doc(*cases: CaseResult, **extra) -> dict:
    doc = Report("run1", "smoke", "2026-01-01T00:00:00+00:00", {"threads": 1}, list(cases), complete=True).to_dict()
    doc.update(extra)
    return doc


def write(tmp_path, doc: dict):
    (tmp_path / "report.json").write_text(json.dumps(doc))
    return tmp_path


def test_the_shipped_json_schema_files_are_current_and_the_statuses_are_the_harness_ones():
    assert formats.main([]) == 0  # `python -m harness.report.formats --write` regenerates them
    assert typing.get_args(format_v1.Status) == STATUSES
    shipped = json.loads(formats.schema_path("report").read_text())
    assert shipped["$defs"]["Check"]["properties"]["status"]["enum"] == list(STATUSES)


def test_other_tools_can_validate_with_the_shipped_json_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(formats.schema_path("report").read_text())
    good = report_doc(case(1))
    jsonschema.validate(good, schema)
    good["cases"][0]["status"] = "FAILED"
    with pytest.raises(jsonschema.ValidationError, match="'FAILED' is not one of"):
        jsonschema.validate(good, schema)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["cases"][0].update(status="FAILED"),
     "cases[0].status: 'FAILED' is not one of pass, fail, error, skip"),
    (lambda d: d["cases"][1]["checks"][0].update(status="ok"),
     "cases[1].checks[0].status: 'ok' is not one of pass, fail, error, skip"),
    (lambda d: d["cases"][0].update(id="../../s1"), "cases[0].id: '../../s1' is not a case id (expected "
                                                     "'vector/pipeline/sSEED')"),
    (lambda d: d["cases"][0].update(vector="w"), "cases[0].id: 'v/p/s1' does not match its vector, pipeline and "
                                                 "seed (expected 'w/p/s1')"),
    (lambda d: d["cases"][1].update(id="v/p/s1", seed=1), "cases[1].id: 'v/p/s1' is recorded twice (also cases[0])"),
    (lambda d: d["cases"][0].pop("checks"), "cases[0].checks: required key is missing"),
    (lambda d: d["cases"][0]["checks"][0].update(value=True), "cases[0].checks[0].value: input should be a valid "
                                                              "number, got True"),
    (lambda d: d["cases"][0]["checks"][0].update(delta=float("nan")), "cases[0].checks[0].delta: input should be "
                                                                      "a finite number, got nan"),
    (lambda d: d["cases"][0]["artifacts"].update(output=3), "cases[0].artifacts.output: input should be a valid "
                                                            "string, got 3"),
    (lambda d: d.update(planned=["v/p/s1", "v/p/s1"]), "planned: 'v/p/s1' is planned twice"),
    (lambda d: d.update(planned=["/etc/passwd"]), "planned[0]: '/etc/passwd' is not a case id (expected "
                                                  "'vector/pipeline/sSEED')"),
    (lambda d: d["cases"][0].update(pipeline="p\n"), "cases[0].pipeline: 'p\\n' is not a valid name (letters, "
                                                     "digits, '_', '.', '-'; not starting with '.' or '-')"),
    (lambda d: d.update(complete="yes"), "complete: input should be a valid boolean, got 'yes'"),
    (lambda d: d.pop("summary"), "summary: required key is missing"),
    (lambda d: d.update(suite="a/b"), "suite: 'a/b' is not a valid name (letters, digits, '_', '.', "
                                         "'-'; not starting with '.' or '-')"),
])
def test_a_malformed_report_is_an_input_error_naming_the_field(tmp_path, edit, message):
    doc = report_doc(case(1), case(2))
    edit(doc)
    write(tmp_path, doc)
    with pytest.raises(InputError) as info:
        load_report(tmp_path)
    assert str(info.value) == f"{tmp_path / 'report.json'}: malformed report: {message}"


def test_an_unknown_version_names_the_ones_read(tmp_path):
    write(tmp_path, report_doc(case(1), schema_version=3))
    with pytest.raises(InputError, match=r"report.json: schema_version: 3 is not supported \(expected 1, 2\)$"):
        load_report(tmp_path)


@pytest.mark.parametrize("metric", ["band_power", "expect", "stage_effect", "rerun_identical", "power"])
@pytest.mark.parametrize("failing", ["fail", "error"])
def test_a_case_status_is_derived_from_its_checks(tmp_path, failing, metric):
    """Every check gates: baseline comparisons and the absolute checks (expect, stage_effect, rerun) alike."""
    doc = report_doc(case(1), case(2, "pass", failing))  # status says pass, a gating check says otherwise
    doc["cases"][1]["checks"][0]["metric"] = metric
    report = load_report(write(tmp_path, doc))
    c = report.cases[1]
    assert (c.status, report.status, report.exit_code) == (failing, failing, 1)
    assert c.error == f"recorded as 'pass' but 1 of its checks says {failing!r}: read as {failing!r}"
    assert report.summary == {"passed": 1, "failed": int(failing == "fail"), "errors": int(failing == "error"),
                              "skipped": 0}


def test_a_recorded_status_worse_than_its_checks_is_kept(tmp_path):
    """An errored stage or a missing baseline: the case is worse than its (passing) checks say."""
    report = load_report(write(tmp_path, report_doc(case(1, "fail"), case(2, "error"), case(3, "skip", "skip"))))
    assert [c.status for c in report.cases] == ["fail", "error", "skip"]
    assert all(c.error is None for c in report.cases)


@pytest.mark.parametrize("complete_key", [None, True])
def test_planned_cases_without_a_result_make_the_report_incomplete(tmp_path, complete_key):
    doc = report_doc(case(1), planned=["v/p/s1", "v/p/s2"])
    if complete_key is None:
        doc.pop("complete")
    report = load_report(write(tmp_path, doc))
    assert not report.complete and report.status == "error" and report.missing == ["v/p/s2"]
    said = "has no 'complete' key" if complete_key is None else "says it is complete"
    assert f"report.json {said} but 1 of its 2 planned cases have no result: read as incomplete" in report.notes


def test_an_old_report_without_complete_or_planned_is_complete(tmp_path):
    doc = report_doc(case(1))
    doc.pop("complete")
    assert load_report(write(tmp_path, doc)).complete


def test_a_malformed_case_record_is_an_input_error_naming_file_and_field(tmp_path):
    Report("run", "smoke", "t", {}, [], complete=False, planned=["v/p/s1"]).write(tmp_path)
    (tmp_path / "cases").mkdir()
    doc = json.loads(case_record_text(case(1), None))
    doc["case"]["status"] = "FAILED"
    (tmp_path / "cases" / "v__p__s1.json").write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        load_report(tmp_path)
    assert str(info.value) == (f"{tmp_path / 'cases' / 'v__p__s1.json'}: malformed case record: case.status: "
                               "'FAILED' is not one of pass, fail, error, skip")


def test_a_case_record_must_be_named_for_its_case(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "v__p__s2.json").write_text(case_record_text(case(1), None))
    with pytest.raises(InputError, match=r"v__p__s2.json: case.id: 'v/p/s1' belongs in v__p__s1.json$"):
        read_case_records(tmp_path)


def test_a_record_of_a_pass_case_with_a_failing_check_reads_as_fail(tmp_path):
    from harness.report.checks_table import write_part

    (tmp_path / "cases").mkdir()
    write_part(tmp_path, case(1))
    text = case_record_text(case(1, "pass", "pass"), None)
    (tmp_path / "cases" / "v__p__s1.json").write_text(text.replace('"status": "pass"}]', '"status": "fail"}]'))
    (got, measurement), = read_case_records(tmp_path).values()
    assert got.status == "fail" and measurement is None


def test_a_version_1_record_with_its_measurement_inline_is_still_read(tmp_path):
    (tmp_path / "cases").mkdir()
    doc = {"case": {k: v for k, v in case(1).to_dict().items() if k not in ("changed", "n_checks", "n_failed")},
           "measurement": {"m": 1}}
    doc["case"]["checks"][0]["status"] = "fail"
    (tmp_path / "cases" / "v__p__s1.json").write_text(json.dumps(doc))
    (got, measurement), = read_case_records(tmp_path).values()
    assert got.status == "fail" and measurement == {"m": 1} and got.n_checks is None and got.check_count == 1


def test_a_pass_case_counting_failed_checks_reads_as_fail(tmp_path):
    doc = report_doc(case(1))
    doc["cases"][0]["n_failed"] = 1
    c = load_report(write(tmp_path, doc)).cases[0]
    assert c.status == "fail" and c.error == "recorded as 'pass' but 1 of its checks says 'fail': read as 'fail'"


@pytest.mark.parametrize("edit,message", [
    (lambda c: c.update(n_checks=0), "cases[0].n_checks: 0 is fewer than the 1 checks listed"),
    (lambda c: c.update(n_checks=2, n_failed=3), "cases[0].n_failed: 3 is more than its 2 checks"),
    (lambda c: c.pop("n_failed"), "cases[0].n_failed: required key is missing"),
    (lambda c: c["artifacts"].update(output="sha256:abc"), "cases[0].artifacts.output: 'sha256:abc' "),
    (lambda c: c["artifacts"].update(output="/etc/passwd"), "cases[0].artifacts.output: '/etc/passwd' "),
    (lambda c: c["changed"].append({"stage": "mask"}), "cases[0].changed[0].param: required key is missing"),
])
def test_version_2_case_keys_are_validated(tmp_path, edit, message):
    doc = report_doc(case(1))
    edit(doc["cases"][0])
    with pytest.raises(InputError, match=re.escape(message)):
        load_report(write(tmp_path, doc))


def test_an_artifact_is_a_relative_path_or_a_store_reference(tmp_path):
    doc = report_doc(case(1))
    doc["cases"][0]["artifacts"] = {"input": "sha256:" + "ab" * 32, "output": "artifacts/v__p__s1/output.png"}
    assert load_report(write(tmp_path, doc)).cases[0].artifacts["input"] == "sha256:" + "ab" * 32


def test_the_writer_refuses_what_the_reader_would_refuse(tmp_path):
    bad = CaseResult("../../s1", "v", "p", 1, "pass", None, {}, {}, [])
    with pytest.raises(RuntimeError, match=r"refusing to write a report that breaks schema v2 \(cases\[0\]\.id: "):
        Report("r", "smoke", "t", {}, [bad], complete=True).write(tmp_path)
    assert not (tmp_path / "report.json").exists()
    with pytest.raises(RuntimeError, match=r"refusing to write a case-record .*case\.status: 'FAILED'"):
        case_record_text(case(1, "FAILED"), None)
