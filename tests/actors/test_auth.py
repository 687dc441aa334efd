"""AuthActor with Accounts: users, tokens that die, throttling and the first admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argon2
import pytest

from floatkey.actors.auth import AuthActor, auth_proxy
from floatkey.auth.accounts import Accounts
from floatkey.auth.hashing import PasswordHashing
from floatkey.auth.throttle import Throttle
from floatkey.auth.tokens import TokenSigner
from floatkey.auth.users import UserHolder
from floatkey.errors import FloatkeyError
from floatkey.storage import Storage

PW = "correct horse battery"
PW2 = "another long passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SpyHashing(PasswordHashing):
    """Cheap argon2 parameters (the real ones take a fifth of a second) and a record of verifies."""

    def __init__(self) -> None:
        super().__init__(argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        self.verified: list[str | None] = []

    def verify(self, stored: str | None, password: str) -> bool:
        self.verified.append(stored)
        return super().verify(stored, password)


class System:
    def __init__(self, data_dir: Path, initial_admin_password: str | None = None) -> None:
        self.storage = Storage(data_dir)
        self.holder = UserHolder()
        self.clock = Clock()
        self.hashing = SpyHashing()
        self.ref = AuthActor.start(
            self.storage,
            self.holder,
            Throttle(3, 60),
            hashing=self.hashing,
            initial_admin_password=initial_admin_password,
            monotonic=self.clock,
        )
        signer = TokenSigner(b"k" * 32, 3600)
        self.accounts = Accounts(auth_proxy(self.ref), self.holder, signer, self.hashing, timeout=10)
        self.accounts.users()

    def stop(self) -> None:
        if self.ref.is_alive():
            self.ref.stop()
        self.storage.close()

    def token(self, username: str, password: str = PW, address: str = "10.0.0.1") -> str:
        return self.accounts.token_for(self.accounts.login(username, password, address))


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    s = System(tmp_path / "data")
    yield s
    s.stop()


def code_of(call: Any) -> str:
    with pytest.raises(FloatkeyError) as caught:
        call()
    return caught.value.code


def test_users_are_added_listed_and_removed(system: System) -> None:
    system.accounts.add_user("root", PW, "admin")
    added = system.accounts.add_user("alice", PW, "user")
    assert added["username"] == "alice" and added["role"] == "user"
    listed = system.accounts.users()
    assert [u["username"] for u in listed] == ["alice", "root"]
    assert set(listed[0]) == {"username", "role", "created_at", "must_change_password"}
    system.accounts.remove_user("alice")
    assert [u["username"] for u in system.accounts.users()] == ["root"]
    assert code_of(lambda: system.accounts.remove_user("alice")) == "not_found"


def test_nothing_secret_is_shown_or_printed(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    user = system.holder.current.get("alice")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PW not in repr(user) and user.password_hash not in repr(user) and user.stamp not in repr(user)
    assert user.password_hash not in str(system.accounts.users())


def test_rules_are_checked_before_anything_is_stored(system: System) -> None:
    assert code_of(lambda: system.accounts.add_user("alice", "short", "user")) == "validation_error"
    assert code_of(lambda: system.accounts.add_user("bad name", PW, "user")) == "validation_error"
    assert code_of(lambda: system.accounts.add_user("alice", PW, "root")) == "validation_error"
    assert system.accounts.users() == []
    system.accounts.add_user("alice", PW, "user")
    assert code_of(lambda: system.accounts.add_user("alice", PW2, "user")) == "validation_error"


def test_login_gives_a_token_that_authenticates(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    user = system.accounts.authenticate(system.token("alice"))
    assert (user.username, user.role) == ("alice", "user")


def test_unknown_user_and_wrong_password_look_the_same(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    errors = []
    for name, password in (("alice", "wrong password!"), ("nobody", "wrong password!")):
        with pytest.raises(FloatkeyError) as caught:
            system.accounts.login(name, password, "10.0.0.1")
        errors.append(caught.value.to_dict())
    assert (
        errors[0]
        == errors[1]
        == {"status": 401, "code": "authentication_failed", "message": "Wrong username or password."}
    )
    # Both paths paid for one argon2 verification: the unknown user against the dummy hash.
    assert len(system.hashing.verified) == 2
    assert system.hashing.verified[1] is None


def test_password_change_voids_earlier_tokens(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    old = system.token("alice")
    system.accounts.set_password("alice", PW2)
    assert code_of(lambda: system.accounts.authenticate(old)) == "unauthorized"
    assert code_of(lambda: system.accounts.login("alice", PW, "10.0.0.1")) == "authentication_failed"
    assert system.accounts.authenticate(system.token("alice", PW2)).username == "alice"


def test_own_password_change_checks_the_old_one(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    alice = system.accounts.authenticate(system.token("alice"))
    assert (
        code_of(lambda: system.accounts.change_own_password(alice, "wrong old one", PW2, "a"))
        == "authentication_failed"
    )
    assert code_of(lambda: system.accounts.change_own_password(alice, PW, PW, "a")) == "validation_error"
    assert code_of(lambda: system.accounts.change_own_password(alice, PW, "short", "a")) == "validation_error"
    changed = system.accounts.change_own_password(alice, PW, PW2, "a")
    assert changed.stamp != alice.stamp
    # A second change with the stale view (stamp) of before is refused.
    assert (
        code_of(lambda: system.accounts.change_own_password(alice, PW2, "third long password", "a"))
        == "unauthorized"
    )


def test_role_change_voids_earlier_tokens(system: System) -> None:
    system.accounts.add_user("root", PW, "admin")
    system.accounts.add_user("alice", PW, "user")
    old = system.token("alice")
    assert system.accounts.set_role("alice", "admin")["role"] == "admin"
    assert code_of(lambda: system.accounts.authenticate(old)) == "unauthorized"
    assert system.accounts.authenticate(system.token("alice")).role == "admin"


def test_deleted_user_token_stays_dead_even_if_the_name_comes_back(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    old = system.token("alice")
    system.accounts.remove_user("alice")
    assert code_of(lambda: system.accounts.authenticate(old)) == "unauthorized"
    system.accounts.add_user("alice", PW, "user")
    assert code_of(lambda: system.accounts.authenticate(old)) == "unauthorized"


def test_the_last_admin_cannot_be_removed_or_demoted(system: System) -> None:
    system.accounts.add_user("root", PW, "admin")
    assert code_of(lambda: system.accounts.remove_user("root")) == "validation_error"
    assert code_of(lambda: system.accounts.set_role("root", "user")) == "validation_error"
    system.accounts.add_user("second", PW, "admin")
    system.accounts.set_role("root", "user")
    assert code_of(lambda: system.accounts.remove_user("second")) == "validation_error"


def test_an_outdated_hash_is_replaced_at_login_and_tokens_stay_valid(system: System) -> None:
    older = PasswordHashing(argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=1))
    system.ref.proxy().add_user("alice", "user", older.hash(PW)).get()
    outdated = system.holder.current.get("alice").password_hash
    assert system.hashing.needs_rehash(outdated)
    token = system.token("alice")
    system.accounts.users()  # the actor has handled everything the login told it
    upgraded = system.holder.current.get("alice").password_hash
    assert upgraded != outdated and not system.hashing.needs_rehash(upgraded)
    assert system.storage.get("users", b"alice")["hash"] == upgraded
    assert system.accounts.authenticate(token).username == "alice"
    assert code_of(lambda: system.token("alice", PW2)) == "authentication_failed"
    system.token("alice")
    system.accounts.users()
    assert system.holder.current.get("alice").password_hash == upgraded


def test_throttled_per_user_even_with_the_right_password(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    for i in range(3):
        assert (
            code_of(lambda i=i: system.accounts.login("alice", "wrong password!", f"10.0.0.{i}"))
            == "authentication_failed"
        )
    with pytest.raises(FloatkeyError) as caught:
        system.accounts.login("alice", PW, "10.9.9.9")
    assert caught.value.code == "too_many_requests"
    assert caught.value.extra["retry_after"] == 60
    verified = len(system.hashing.verified)
    system.clock.now += 59
    assert code_of(lambda: system.accounts.login("alice", PW, "10.9.9.9")) == "too_many_requests"
    assert len(system.hashing.verified) == verified, "a throttled login must not even look at the password"
    system.clock.now += 1
    assert system.accounts.login("alice", PW, "10.9.9.9").username == "alice"


def test_throttled_per_address_across_usernames(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    for name in ("x1", "x2", "x3"):
        system.accounts.add_user(name, PW, "user")
        assert (
            code_of(lambda n=name: system.accounts.login(n, "wrong password!", "10.6.6.6"))
            == "authentication_failed"
        )
    assert code_of(lambda: system.accounts.login("alice", PW, "10.6.6.6")) == "too_many_requests"
    assert system.accounts.login("alice", PW, "10.0.0.1").username == "alice"


def test_unknown_users_are_throttled_like_known_ones(system: System) -> None:
    for _ in range(3):
        assert (
            code_of(lambda: system.accounts.login("ghost", "wrong password!", "10.0.0.1"))
            == "authentication_failed"
        )
    assert code_of(lambda: system.accounts.login("ghost", "any password", "10.0.0.2")) == "too_many_requests"


def test_success_clears_the_user_count_but_not_the_address_count(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    for _ in range(2):
        code_of(lambda: system.accounts.login("alice", "wrong password!", "10.0.0.1"))
    system.accounts.login("alice", PW, "10.0.0.2")
    for _ in range(2):
        code_of(lambda: system.accounts.login("alice", "wrong password!", "10.0.0.3"))
    assert system.accounts.login("alice", PW, "10.0.0.4").username == "alice"
    code_of(lambda: system.accounts.login("bob", "wrong password!", "10.0.0.1"))
    assert code_of(lambda: system.accounts.login("alice", PW, "10.0.0.1")) == "too_many_requests"


def test_verifying_a_token_needs_no_actor(system: System) -> None:
    system.accounts.add_user("alice", PW, "user")
    token = system.token("alice")
    system.ref.stop()
    assert system.accounts.authenticate(token).username == "alice"


def test_users_and_their_tokens_survive_a_restart(tmp_path: Path) -> None:
    first = System(tmp_path / "data")
    first.accounts.add_user("alice", PW, "user")
    token = first.token("alice")
    first.stop()
    second = System(tmp_path / "data")
    try:
        assert second.accounts.authenticate(token).username == "alice"
        assert second.token("alice")
    finally:
        second.stop()


def test_initial_admin_must_change_its_password_and_is_made_once(tmp_path: Path) -> None:
    first = System(tmp_path / "data", initial_admin_password="initial-pass")
    try:
        admin = first.accounts.login("admin", "initial-pass", "10.0.0.1")
        assert admin.role == "admin" and admin.must_change_password
        changed = first.accounts.change_own_password(admin, "initial-pass", PW, "10.0.0.1")
        assert not changed.must_change_password
        first.accounts.add_user("root", PW, "admin")
        first.accounts.remove_user("admin")
    finally:
        first.stop()
    second = System(tmp_path / "data", initial_admin_password="initial-pass")
    try:
        assert [u["username"] for u in second.accounts.users()] == ["root"]
    finally:
        second.stop()


def test_initial_admin_is_ignored_when_users_exist(tmp_path: Path) -> None:
    first = System(tmp_path / "data")
    first.accounts.add_user("root", PW, "admin")
    first.stop()
    second = System(tmp_path / "data", initial_admin_password="initial-pass")
    try:
        assert [u["username"] for u in second.accounts.users()] == ["root"]
    finally:
        second.stop()
