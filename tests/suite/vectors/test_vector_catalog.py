"""harness.suite.vectors.catalog: finding vector files by id."""

from __future__ import annotations

import pytest
from vector_helpers import BASE, write

from harness.errors import ConfigError
from harness.suite import vectors as V


def test_discover_ignores_suites_and_rejects_duplicate_ids(tmp_path):
    write(tmp_path, BASE)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "smoke.toml").write_text('name = "smoke"\nvectors = ["*"]\n')
    assert list(V.discover(tmp_path)) == ["bad"]
    (tmp_path / "more").mkdir()
    write(tmp_path / "more", BASE)
    with pytest.raises(ConfigError, match=r"more/bad\.toml: id: duplicate vector id 'bad' \(also in .*bad\.toml\)"):
        V.discover(tmp_path)
    with pytest.raises(ConfigError, match=r"vectors directory not found"):
        V.discover(tmp_path / "nope")


def test_get_vector_unknown_lists_known_ids(tmp_path):
    write(tmp_path, BASE)
    write(tmp_path, BASE.replace('id = "bad"', 'id = "ok"'), "ok")
    assert V.get_vector("ok", tmp_path).id == "ok"
    with pytest.raises(ConfigError, match=r"^unknown vector 'nope'; known: bad, ok$"):
        V.get_vector("nope", tmp_path)
