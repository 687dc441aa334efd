"""``floatkey users``: add, list, passwd, role, remove, rotate-secret on the data directory."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from floatkey.app import users_command as users
from floatkey.app.config import Settings
from floatkey.auth import tokens
from floatkey.errors import FloatkeyError
from tests.support.server import ServerProcess

PW = "correct horse battery"


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = users.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verify(data_dir: Path, username: str, password: str) -> bool:
    with users.accounts(Settings(data_dir=data_dir)) as acc:
        try:
            acc.login(username, password, "cli-test")
        except FloatkeyError:
            return False
        return True


def test_add_list_passwd_role_remove(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = str(tmp_path / "data")
    assert (
        run(
            capsys,
            monkeypatch,
            "add",
            "root",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            d,
            stdin=PW + "\n",
        )[0]
        == 0
    )
    assert (
        run(capsys, monkeypatch, "add", "alice", "--password-stdin", "--data-dir", d, stdin=PW + "\n")[0] == 0
    )
    code, out, _ = run(capsys, monkeypatch, "list", "--data-dir", d)
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [["alice", "user"], ["root", "admin"]]
    assert PW not in out
    assert verify(tmp_path / "data", "alice", PW)
    assert (
        run(
            capsys,
            monkeypatch,
            "passwd",
            "alice",
            "--password-stdin",
            "--data-dir",
            d,
            stdin="a brand new passphrase\n",
        )[0]
        == 0
    )
    assert not verify(tmp_path / "data", "alice", PW)
    assert verify(tmp_path / "data", "alice", "a brand new passphrase")
    assert run(capsys, monkeypatch, "role", "alice", "admin", "--data-dir", d)[0] == 0
    assert run(capsys, monkeypatch, "remove", "root", "--data-dir", d)[0] == 0
    code, out, _ = run(capsys, monkeypatch, "list", "--data-dir", d)
    assert out.split()[:2] == ["alice", "admin"]


def test_refusals_exit_non_zero_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = str(tmp_path / "data")
    code, _, err = run(
        capsys, monkeypatch, "add", "alice", "--password-stdin", "--data-dir", d, stdin="short\n"
    )
    assert code == 1 and "at least 12 characters" in err
    run(capsys, monkeypatch, "add", "root", "--role", "admin", "--password-stdin", "--data-dir", d, stdin=PW)
    code, _, err = run(capsys, monkeypatch, "remove", "root", "--data-dir", d)
    assert code == 1 and "last admin" in err
    code, _, err = run(capsys, monkeypatch, "remove", "ghost", "--data-dir", d)
    assert code == 1 and "no user 'ghost'" in err


def test_no_terminal_and_no_stdin_flag_asks_for_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "add", "alice", "--data-dir", str(tmp_path / "data"), stdin=PW)
    assert code == 1 and "--password-stdin" in err


def test_password_on_the_command_line_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(
        capsys, monkeypatch, "add", "alice", "--password", PW, "--data-dir", str(tmp_path / "d")
    )
    assert code == 0 and "visible" in err
    assert PW not in err


def test_prompt_asks_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PW, PW + "typo"])
    monkeypatch.setattr(users.getpass, "getpass", lambda prompt: next(answers))
    monkeypatch.setattr(sys, "stdin", type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    code = users.main(["add", "alice", "--data-dir", str(tmp_path / "data")])
    assert code == 1 and "differ" in capsys.readouterr().err


def test_rotate_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    first = tokens.load_or_create_secret(tmp_path / "data")
    assert run(capsys, monkeypatch, "rotate-secret", "--data-dir", str(tmp_path / "data"))[0] == 0
    assert tokens.load_or_create_secret(tmp_path / "data") != first


def test_while_a_server_runs_it_points_to_the_http_route(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        command = [
            sys.executable,
            "-m",
            "floatkey",
            "users",
            "add",
            "alice",
            "--password-stdin",
            "--data-dir",
            str(tmp_path / "data"),
        ]
        done = subprocess.run(command, input=PW, capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    assert done.returncode == 2
    assert "in use by another floatkey process" in done.stderr
    assert "POST /api/v4/users" in done.stderr
    assert "Traceback" not in done.stderr
