"""The users of authentication mode as the server holds them: plain, immutable data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from floatkey.auth.passwords import ADMIN
from floatkey.timeutil import format_time


@dataclass(frozen=True, slots=True)
class UserView:
    username: str
    role: str
    password_hash: str = field(repr=False)
    #: Replaced on every password or role change; tokens must carry the current one.
    stamp: str = field(repr=False)
    must_change_password: bool
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What the API shows of a user: never the hash or the stamp."""
        return {
            "username": self.username,
            "role": self.role,
            "created_at": format_time(self.created_at),
            "must_change_password": self.must_change_password,
        }


@dataclass(frozen=True)
class UserIndex:
    """An immutable snapshot of the users."""

    users: Mapping[str, UserView]

    def get(self, username: str) -> UserView | None:
        return self.users.get(username)

    @property
    def admins(self) -> int:
        return sum(1 for u in self.users.values() if u.role == ADMIN)


class UserHolder:
    """Where the actor publishes the current ``UserIndex`` for request threads."""

    def __init__(self) -> None:
        self.current = UserIndex(MappingProxyType({}))

    def publish(self, index: UserIndex) -> None:
        self.current = index
