"""harness.suite.vectors.catalog: finding vector files by id."""

from __future__ import annotations

import pytest
from vector_helpers import BASE, write

from harness.errors import ConfigError
from harness.suite import vectors as V


def test_discover_ignores_suites_and_rejects_duplicate_ids_within_one_folder(tmp_path):
    write(tmp_path, BASE)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "smoke.toml").write_text('name = "smoke"\nvectors = ["*"]\n')
    assert list(V.discover(tmp_path)) == ["bad"]
    (tmp_path / "more").mkdir()
    write(tmp_path / "more", BASE)
    with pytest.raises(ConfigError, match=r"more/bad\.toml: id: duplicate vector id 'bad' \(also in .*bad\.toml\); "
                                          r"ids must be unique within a vector folder"):
        V.discover(tmp_path)
    with pytest.raises(ConfigError, match=r"vectors directory not found"):
        V.discover(tmp_path / "nope")


def test_get_vector_unknown_lists_known_ids(tmp_path):
    write(tmp_path, BASE)
    write(tmp_path, BASE.replace('id = "bad"', 'id = "ok"'), "ok")
    assert V.get_vector("ok", tmp_path).id == "ok"
    with pytest.raises(ConfigError, match=r"^unknown vector 'nope'; known: bad, ok$"):
        V.get_vector("nope", tmp_path)


def test_an_earlier_folder_shadows_a_later_one_and_says_which_files(tmp_path):
    project, builtin = tmp_path / "project", tmp_path / "builtin"
    project.mkdir(), builtin.mkdir()
    write(builtin, BASE)
    write(builtin, BASE.replace('id = "bad"', 'id = "ok"'), "ok")
    write(project, BASE.replace("a valid vector", "the project's own vector"))
    known, shadowed = V.discover_shadowing([project, builtin])
    assert list(known) == ["bad", "ok"]
    assert known["bad"].path == project / "bad.toml" and known["bad"].description.startswith("the project's own")
    assert known["ok"].path == builtin / "ok.toml"
    assert shadowed == {"bad": builtin / "bad.toml"}
    assert V.shadowing_note(known, shadowed) == (
        f"project vectors shadow built-in ones of the same id, the project's being used: "
        f"bad ({project / 'bad.toml'} over {builtin / 'bad.toml'})")
    assert V.discover([builtin, project])["bad"].path == builtin / "bad.toml"  # order decides, nothing else
    assert V.shadowing_note(*V.discover_shadowing([builtin, builtin])) is None  # the same file twice: no shadow
