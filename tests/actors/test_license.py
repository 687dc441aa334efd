"""LicenseActor with real storage: answers arrive through a ticket once durable."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from floatkey.actors import license as lic
from floatkey.actors.license import LicenseActor, LicenseMessage, Register, Resync
from floatkey.errors import FloatkeyError, StorageError
from floatkey.rules.license import LicenseBook
from floatkey.rules.policy import policy_from_fields
from floatkey.rules.seats import ClientInfo
from floatkey.storage import Storage, environment
from floatkey.storage.records import license_key, license_record, seat_key

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path):
    s = Storage(tmp_path / "data", map_size=1 << 20)
    yield s
    s.close()


@pytest.fixture
def actor(storage):
    book = LicenseBook(
        license_id=3, policy=policy_from_fields({"product": "cad", "floating_users": 1}), added_at=NOW
    )
    ref = LicenseActor.start(book, storage, lambda: NOW, {})
    yield ref
    ref.stop()


def ask(ref, message):
    return lic.ask(ref, message, 10)


@dataclass(frozen=True)
class Bogus(LicenseMessage[None]):
    """A message the actor has no handler for: stands for a bug in a handler."""


def test_an_answer_arrives_only_once_its_seat_is_on_disk(actor, storage):
    answer = ask(actor, Register("alice", ClientInfo()))
    assert answer["floating_slots_in_use"] == 1
    assert storage.get("seats", seat_key(3, "alice"))["user"] == "alice"


def test_a_refusal_is_raised_to_the_caller(actor):
    ask(actor, Register("alice", ClientInfo()))
    with pytest.raises(FloatkeyError) as err:
        ask(actor, Register("bob", ClientInfo()))
    assert err.value.code == "floating_not_available"


def test_a_bug_answers_internal_error_and_the_actor_lives_on(actor):
    with pytest.raises(FloatkeyError) as err:
        ask(actor, Bogus())
    assert err.value.code == "internal_error"
    assert actor.is_alive()
    assert ask(actor, Register("alice", ClientInfo()))["floating_slots_in_use"] == 1


@pytest.fixture
def unstorable(monkeypatch):
    """The storage cannot encode the seat of a user called "huge" (a value the rules did not
    catch): the write fails in the storage writer, as a commit can."""
    pack = environment.pack

    def failing(value):
        if isinstance(value, dict) and value.get("user") == "huge":
            raise OverflowError("injected: cannot store this seat")
        return pack(value)

    monkeypatch.setattr(environment, "pack", failing)


def test_a_failed_write_is_not_acknowledged(actor, storage, unstorable):
    with pytest.raises(StorageError):
        ask(actor, Register("huge", ClientInfo()))
    assert storage.get("seats", seat_key(3, "huge")) is None


@pytest.fixture
def stored_actor(storage):
    """A two-seat license that is on disk too, as the server's licenses are."""
    book = LicenseBook(
        license_id=4, policy=policy_from_fields({"product": "cad", "floating_users": 2}), added_at=NOW
    )
    storage.write_now([("put", "licenses", license_key(4), license_record(book))])
    ref = LicenseActor.start(book, storage, lambda: NOW, {})
    yield ref
    ref.stop()


def users(ref):
    return [seat["user"] for seat in ask(ref, lic.Registrations())]


def test_after_a_failed_write_the_license_holds_what_is_stored(stored_actor, storage, unstorable):
    ask(stored_actor, Register("alice", ClientInfo()))
    with pytest.raises(StorageError):
        ask(stored_actor, Register("huge", ClientInfo()))
    # The writer told the actor to reload before it released the failed answer.
    assert users(stored_actor) == ["alice"]
    assert ask(stored_actor, Register("bob", ClientInfo()))["floating_slots_in_use"] == 2
    assert storage.get("seats", seat_key(4, "bob"))["user"] == "bob"


def test_a_reload_waits_for_the_license_own_last_write(stored_actor):
    ticket = lic.send(stored_actor, Register("alice", ClientInfo()))
    stored_actor.tell(Resync(10**9))  # read right after the write was queued, not yet committed
    ticket.result(10)
    assert users(stored_actor) == ["alice"]


def test_a_check_in_that_says_the_same_keeps_the_seat_client(storage):
    """1,000,000 seats each owning a copy after one round of check-ins: 230 MB more."""
    book = LicenseBook(
        license_id=3,
        policy=policy_from_fields({"product": "cad", "floating_users": 2, "max_borrow_time": 24}),
        added_at=NOW,
    )
    ref = LicenseActor.start(book, storage, lambda: NOW, {})
    try:
        first = ClientInfo("ws-1", "10.0.0.2", "cad 7")
        ask(ref, Register("alice", first))
        ask(ref, Register("alice", ClientInfo("ws-1", "10.0.0.2", "cad 7")))
        assert book.seats["alice"].client is first
        ask(ref, lic.Borrow("alice", ClientInfo("ws-1", "10.0.0.2", "cad 7"), None))
        assert book.seats["alice"].client is first
        moved = ClientInfo("ws-2", "10.0.0.3", "cad 7")
        answer = ask(ref, Register("alice", moved))
        assert book.seats["alice"].client is moved and answer["registration"]["os_hostname"] == "ws-2"
    finally:
        ref.stop()
