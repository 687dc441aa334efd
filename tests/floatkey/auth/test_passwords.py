"""Password, username and role rules."""

from __future__ import annotations

import pytest

from floatkey.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_password,
    check_role,
    check_username,
    password_problems,
    username_problems,
)
from floatkey.errors import FloatkeyError


def test_a_long_phrase_is_accepted() -> None:
    assert password_problems("correct horse battery staple", "alice") == []
    assert check_password("x" * MIN_LENGTH + "y", "alice")


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("x" * (MIN_LENGTH - 1), f"at least {MIN_LENGTH}"),
        ("x" * (MAX_LENGTH + 1), f"at most {MAX_LENGTH}"),
        ("twelve chars\x00here", "control characters"),
        ("line\nbreak in it", "control characters"),
        ("Alice.Example", "differs from the username"),
        ("password1234", "guessers try first"),
        ("PasswordPassword", "guessers try first"),
    ],
)
def test_bad_passwords_are_refused_with_the_reason(password: str, problem: str) -> None:
    problems = password_problems(password, "alice.example")
    assert any(problem in p for p in problems), problems
    with pytest.raises(FloatkeyError) as caught:
        check_password(password, "alice.example")
    assert caught.value.code == "validation_error"
    assert problem in caught.value.message


def test_exactly_the_minimum_length_is_enough() -> None:
    assert password_problems("a" * (MIN_LENGTH - 1) + "b", "alice") == []
    assert password_problems("a" * (MIN_LENGTH - 2) + "b", "alice") != []


def test_unicode_passwords_count_characters_not_bytes() -> None:
    assert password_problems("äöüßéèêëìíîï", "alice") == []


@pytest.mark.parametrize("name", ["alice", "a", "bob.smith@example.com", "ci-runner_2", "A" * 64])
def test_good_usernames(name: str) -> None:
    assert username_problems(name) == []
    assert check_username(name) == name


@pytest.mark.parametrize(
    "name", ["", ".hidden", "-dash", "with space", "slash/es", "colon:", "A" * 65, "nul\x00", "é"]
)
def test_bad_usernames(name: str) -> None:
    assert username_problems(name)
    with pytest.raises(FloatkeyError):
        check_username(name)


def test_roles() -> None:
    assert check_role("admin") == "admin"
    assert check_role("user") == "user"
    with pytest.raises(FloatkeyError):
        check_role("root")
