"""Rules for usernames, roles and passwords: pure functions that list what is wrong.

Passwords: at least 12 characters (length is what makes a password hard to guess;
NIST SP 800-63B), at most 256 (argon2 takes any length, but a body full of password is
a cheap way to make the server hash megabytes), no control characters (they cannot be
typed at a prompt and usually mean a copy-paste accident), not the username, not one of
a handful of passwords every guesser tries first. No composition rules: "Passw0rd!" is
not stronger than a long phrase.
"""

from __future__ import annotations

import re
import unicodedata

from floatkey.errors import FloatkeyError

ADMIN, USER = "admin", "user"
ROLES = (ADMIN, USER)

MIN_LENGTH = 12
MAX_LENGTH = 256

#: Letters, digits and ``. _ @ -``; what fits in a Basic header and a URL path unescaped.
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")

_COMMON = frozenset(
    {
        "123456789012",
        "1234567890123",
        "password1234",
        "passwordpassword",
        "qwertyuiopas",
        "adminadminadmin",
        "administrator",
        "letmeinletmein",
        "changemechangeme",
        "floatkeyfloatkey",
        "licenseserver",
        "iloveyou1234",
        "000000000000",
        "111111111111",
        "aaaaaaaaaaaa",
    }
)


def username_problems(username: str) -> list[str]:
    if not _USERNAME.fullmatch(username):
        return ["a username is 1 to 64 letters, digits or . _ @ -, starting with a letter or digit"]
    return []


def password_problems(password: str, username: str) -> list[str]:
    """What makes ``password`` unacceptable for ``username``; empty when it is fine."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"a password has at most {MAX_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
        problems.append("a password has no control characters")
    folded = password.casefold()
    if folded == username.casefold():
        problems.append("a password differs from the username")
    if folded in _COMMON:
        problems.append("this password is on the list of passwords guessers try first")
    return problems


def check_username(username: str) -> str:
    problems = username_problems(username)
    if problems:
        raise FloatkeyError("validation_error", f"The username is not valid: {'; '.join(problems)}.")
    return username


def check_password(password: str, username: str) -> str:
    problems = password_problems(password, username)
    if problems:
        raise FloatkeyError("validation_error", f"The password is not accepted: {'; '.join(problems)}.")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise FloatkeyError("validation_error", f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    return role
