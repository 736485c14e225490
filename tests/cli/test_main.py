"""Exit codes of the command line: 2 user errors, 3 internal errors (traceback with --debug)."""

import pytest

from harness.cli import main
from harness.errors import ConfigError, StageError


def _boom(exc):
    def run(args):
        raise exc
    return run


@pytest.fixture
def patched_bench(monkeypatch):
    import harness.cli.compare as m

    def use(exc):
        monkeypatch.setattr(m, "_cmd_bench", _boom(exc))
    return use


def test_internal_error_is_exit_3_with_one_line_and_a_pointer_to_debug(patched_bench, capsys):
    patched_bench(ZeroDivisionError("division by zero"))
    assert main(["bench"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: division by zero)" in err
    assert "--debug" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--debug", "bench"], ["bench", "--debug"]])
def test_debug_shows_the_traceback(patched_bench, argv):
    patched_bench(ZeroDivisionError("division by zero"))
    with pytest.raises(ZeroDivisionError):
        main(argv)


def test_user_error_is_exit_2(patched_bench, capsys):
    patched_bench(ConfigError("suite.toml: seeds: expected a list"))
    assert main(["bench"]) == 2
    assert capsys.readouterr().err == "harness: error: suite.toml: seeds: expected a list\n"


def test_a_failed_stage_is_not_a_user_error():
    from harness.errors import HarnessError

    assert not issubclass(StageError, HarnessError)


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: harness" in capsys.readouterr().out


def test_a_file_system_refusal_is_exit_2_naming_the_path(patched_bench, capsys):
    patched_bench(PermissionError(13, "Permission denied", "/reports/run"))
    assert main(["bench"]) == 2
    assert capsys.readouterr().err == "harness: error: /reports/run: Permission denied\n"
