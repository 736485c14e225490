"""A case records its stages' code and weights digests (harness.run.stage_record), so "what changed"
names a swapped checkpoint or an edited backend module, even when the parameters are the same."""

from __future__ import annotations

from test_cache import IDENTITY, WEIGHTED, project, run  # noqa: F401 - the project fixture

from harness.cli import main
from harness.report.model import changed_params
from harness.report.whatchanged import change_text


def test_a_swapped_checkpoint_and_an_edited_module_are_named_as_changes(project, capsys, monkeypatch):
    root, module = project(WEIGHTED, params=', weights = "weights.txt"')
    (root / "weights.txt").write_text("1.00")
    monkeypatch.chdir(root)
    assert main(["bake", "--project", str(root)]) == 0
    capsys.readouterr()
    status, _, (case, _) = run(root)
    denoise = case.config["pipeline"]["denoise"]
    assert status == "pass" and case.changed == [] and len(denoise["weights"]) == len(denoise["code"]) == 12
    assert "weights" not in case.config["pipeline"]["inpaint"]  # telea has no weights; its code is recorded
    assert len(case.config["pipeline"]["inpaint"]["code"]) == 12

    (root / "weights.txt").write_text("1.0")  # another checkpoint under the same name, same output
    status, _, (case, _) = run(root)
    assert status == "pass"
    assert [(c["stage"], c["param"]) for c in case.changed] == [("denoise", "weights")]
    assert change_text(case.changed[0]) == f"denoise.weights {denoise['weights']} → {case.changed[0]['run']}"
    assert case.changed[0]["baseline"] == denoise["weights"] != case.changed[0]["run"]

    module.write_text(WEIGHTED + "\n# an edit that changes nothing it computes\n")
    status, _, (case, _) = run(root)
    assert status == "pass" and {(c["stage"], c["param"]) for c in case.changed} == {("denoise", "weights"),
                                                                                      ("denoise", "code")}


def test_identity_keys_count_only_when_both_sides_record_them():
    old = {"denoise": {"backend": "nlmeans", "strength": 0.4}}  # baked before identities were recorded
    new = {"denoise": {"backend": "nlmeans", "strength": 0.4, "code": "a" * 12, "weights": "b" * 12}}
    assert changed_params(old, new) == []
    assert changed_params({"denoise": {**new["denoise"], "weights": "c" * 12}}, new) == [
        {"stage": "denoise", "param": "weights", "baseline": "c" * 12, "run": "b" * 12}]
    assert changed_params(new, {"denoise": {"backend": "nlmeans", "strength": 0.5}}) == [
        {"stage": "denoise", "param": "strength", "baseline": 0.4, "run": 0.5}]


def test_the_records_know_the_same_identity_keys():
    from harness.report import model
    from harness.run import stage_record

    assert model.IDENTITY_KEYS == stage_record.IDENTITY_KEYS
