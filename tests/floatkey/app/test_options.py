"""How every ``floatkey`` command ends: one line on standard error and an exit status."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from floatkey.app import audit_command, users_command
from floatkey.app.config import Settings
from floatkey.app.options import CANNOT_START, REFUSED, run_command
from floatkey.app.system import Floatkey
from floatkey.errors import ConfigError, FloatkeyError, StorageError


def fail(exc: Exception) -> int:
    raise exc


def test_work_that_succeeds_returns_its_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("floatkey x", lambda: None) == 0
    assert run_command("floatkey x", lambda: 3) == 3
    assert capsys.readouterr().err == ""


def test_a_refusal_prints_its_code_and_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = FloatkeyError("license_not_found", "No license 7: list them with floatkey licenses list.")
    assert run_command("floatkey x", lambda: fail(refusal)) == REFUSED
    assert capsys.readouterr().err == (
        "floatkey x: license_not_found: No license 7: list them with floatkey licenses list.\n"
    )
    assert run_command("floatkey x", lambda: fail(refusal), refused=2) == 2


def test_configuration_and_storage_errors_cannot_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("floatkey x", lambda: fail(ConfigError("port: must be at most 65535"))) == CANNOT_START
    assert "floatkey x: " in capsys.readouterr().err


def test_a_storage_hint_follows_the_error(capsys: pytest.CaptureFixture[str]) -> None:
    def hint(exc: StorageError) -> str | None:
        return "stop the server first" if "in use" in str(exc) else None

    busy = StorageError("data directory in use")
    assert run_command("floatkey x", lambda: fail(busy), storage_hint=hint) == CANNOT_START
    assert capsys.readouterr().err.splitlines()[-1] == "floatkey x: stop the server first"
    other = StorageError("disk full")
    run_command("floatkey x", lambda: fail(other), storage_hint=hint)
    assert "stop the server" not in capsys.readouterr().err


def test_users_refusals_name_their_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert users_command.main(["remove", "ghost", "--data-dir", str(tmp_path / "data")]) == REFUSED
    err = capsys.readouterr().err
    assert err.startswith("floatkey users: not_found: ") and "no user 'ghost'" in err, err


def test_audit_refusals_end_with_2_not_the_broken_chain_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    with Floatkey(Settings(data_dir=Path(data))):
        pass
    assert audit_command.main(["verify", "--data-dir", data]) == 0
    capsys.readouterr()
    assert audit_command.main(["export", "--data-dir", data, "--from", "yesterday-ish"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("floatkey audit: validation_error: "), err
