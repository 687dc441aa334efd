"""HardwareKeyActor and KeyGate over the real PC/SC stack (pcscd + vpcd + virtual keys)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from cryptography.hazmat.primitives import serialization

from floatkey import listener
from floatkey.actors.hardware_key import HardwareKeyActor
from floatkey.app.config import HardwareKeySettings
from floatkey.errors import FloatkeyError
from floatkey.hardware import ca
from floatkey.hardware.gate import KeyGate
from floatkey.hardware.listener import HardwareKeyListener
from floatkey.hardware.pcsc import BUSY_MESSAGE
from floatkey.hardware.piv import refused_pin_reason
from floatkey.hardware.refused_pins import RefusedPins
from tests.support.pcsc import PORTS, READERS, TEST_PIN, wait_for

ACTION = "registering user"


@pytest.fixture
def ca_file(test_ca, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(test_ca[1].public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def start_actor(pcscd, ca_file: Path) -> Iterator[Any]:
    """``start_actor(pin=TEST_PIN, **settings)`` -> proxy; stopped after the test."""
    refs: list[pykka.ActorRef[Any]] = []

    def start(pin: str | None = TEST_PIN, refused_pins: RefusedPins | None = None, **settings: Any) -> Any:
        settings.setdefault("ca_certificate", ca_file)
        settings.setdefault("pcsc_timeout", 1.0)
        ref = HardwareKeyActor.start(HardwareKeySettings(**settings), pin, refused_pins)
        refs.append(ref)
        return ref

    yield start
    for ref in refs:
        ref.stop(timeout=10)


def valid_serials(ref: pykka.ActorRef[Any]) -> list[str]:
    return [k["serial"] for k in ref.proxy().status().get(timeout=5)["keys"] if k["state"] == "valid"]


def keys(ref: pykka.ActorRef[Any]) -> dict[str, dict[str, Any]]:
    return {k["reader"]: k for k in ref.proxy().status().get(timeout=5)["keys"]}


def wait_state(ref, reader: str, state: str | None, timeout: float = 10) -> dict[str, Any]:
    def seen() -> Any:
        key = keys(ref).get(reader)
        if state is None:
            return key is None
        return key if key is not None and key["state"] == state else None

    return wait_for(seen, timeout, f"{reader} to be {state}")


class Recorder(pykka.ThreadingActor, HardwareKeyListener):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []

    def key_connected(self, serial: str, reader: str) -> None:
        self.events.append(("connected", serial, reader))

    def key_disconnected(self, serial: str, reader: str) -> None:
        self.events.append(("disconnected", serial, reader))

    def seen(self) -> list[tuple[str, str, str]]:
        return list(self.events)


def test_plug_pull_replug_with_events(start_actor, virtual_keys, make_test_card) -> None:
    recorder = Recorder.start()
    try:
        ref = start_actor()
        assert ref.proxy().status().get()["pcsc"] in ("running", "unavailable")
        virtual_keys.plug(make_test_card(1001))
        key = wait_state(ref, READERS[0], "valid")
        assert (key["serial"], key["reason"]) == ("1001", None)
        assert key["since"].tzinfo is not None
        assert ref.proxy().status().get()["pcsc"] == "running"
        assert valid_serials(ref) == ["1001"]
        virtual_keys.pull()
        wait_state(ref, READERS[0], None)
        assert valid_serials(ref) == []
        virtual_keys.plug(make_test_card(1001))
        wait_state(ref, READERS[0], "valid")
        expected = [("connected", "1001", READERS[0]), ("disconnected", "1001", READERS[0])] * 2
        wait_for(lambda: recorder.proxy().seen().get()[:3] == expected[:3], 5, "the events")
    finally:
        recorder.stop()


def test_key_from_another_ca_is_invalid(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    other_key, other_cert = ca.make_ca("not the vendor")
    virtual_keys.plug(make_test_card(1002, ca_key=other_key, ca_cert=other_cert))
    key = wait_state(ref, READERS[0], "invalid")
    assert key["reason"] == "certificate not signed by the configured CA"
    assert key["serial"] == "1002"


def test_bad_signature_is_invalid(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    virtual_keys.plug(make_test_card(1003, bad_signature=True))
    key = wait_state(ref, READERS[0], "invalid")
    assert "signature does not verify" in key["reason"]


def test_wrong_pin_is_tried_once_across_restarts(
    start_actor, virtual_keys, make_test_card, card_holders, tmp_path
) -> None:
    record = tmp_path / "data" / "refused-pins.json"
    record.parent.mkdir()
    card = make_test_card(1004)
    virtual_keys.plug(card)
    for restart in range(4):
        ref = start_actor(pin="000000", refused_pins=RefusedPins(record), verify_interval=0.05)
        key = wait_state(ref, READERS[0], "invalid")
        assert key["reason"] == refused_pin_reason(2), f"restart {restart}"
        assert card.tries_left == 2, f"the PIN was sent again at restart {restart}"
        ref.stop(timeout=10)
    # Refused: let go at once, so an administrator can repair the key with ykman meanwhile.
    card_holders("exclusive", READERS[0]).release()
    ref = start_actor(pin="000000", refused_pins=RefusedPins(record))
    wait_state(ref, READERS[0], "invalid")
    virtual_keys.pull()
    virtual_keys.plug(card)
    assert wait_state(ref, READERS[0], "invalid")["reason"] == refused_pin_reason(2)
    assert card.tries_left == 2


def test_a_changed_pin_is_tried_again(start_actor, virtual_keys, make_test_card, tmp_path) -> None:
    record = tmp_path / "refused-pins.json"
    card = make_test_card(1008)
    virtual_keys.plug(card)
    ref = start_actor(pin="000000", refused_pins=RefusedPins(record))
    wait_state(ref, READERS[0], "invalid")
    ref.stop(timeout=10)
    ref = start_actor(pin="111111", refused_pins=RefusedPins(record))
    assert wait_state(ref, READERS[0], "invalid")["reason"] == refused_pin_reason(1)
    ref.stop(timeout=10)
    ref = start_actor(pin=TEST_PIN, refused_pins=RefusedPins(record))
    wait_state(ref, READERS[0], "valid")
    assert card.tries_left == 3
    assert not RefusedPins(record).refused("1008", "111111"), "an accepted PIN clears the record"


def test_card_from_another_ca_gets_no_pin_and_is_left_to_others(
    start_actor, virtual_keys, make_test_card, card_holders
) -> None:
    ref = start_actor(verify_interval=0.05)
    other_key, other_cert = ca.make_ca("not the vendor")
    foreign = make_test_card(1009, ca_key=other_key, ca_cert=other_cert)
    virtual_keys.plug(foreign, port=35964)
    wait_state(ref, READERS[1], "invalid")
    assert foreign.counts[0x20] == 0, "the PIN went to a card from another CA"
    # Another program can open it exclusively while floatkey runs.
    card_holders("exclusive", READERS[1]).release()
    looked = foreign.counts[0xA4]
    # Not looked at again: let floatkey verify its own key many times meanwhile.
    own = make_test_card(1010)
    virtual_keys.plug(own, port=35963)
    wait_state(ref, READERS[0], "valid")
    wait_for(lambda: own.counts[0x87] > 20, 20, "many re-verifications of the valid key")
    assert foreign.counts[0xA4] == looked
    # Until it is plugged in again.
    virtual_keys.pull(35964)
    virtual_keys.plug(foreign, port=35964)
    wait_for(lambda: foreign.counts[0xA4] > looked, 10, "the re-inserted card to be looked at")
    assert wait_state(ref, READERS[1], "invalid")["reason"] == "certificate not signed by the configured CA"
    assert foreign.counts[0x20] == 0


def test_without_a_ca_only_listed_serials_get_the_pin(
    start_actor, virtual_keys, make_test_card, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="floatkey.actors.hardware_key")
    ref = start_actor(ca_certificate=None, pin_serials=("5001",))
    listed, unlisted = make_test_card(5001), make_test_card(5002)
    virtual_keys.plug(listed, port=35963)
    virtual_keys.plug(unlisted, port=35964)
    wait_state(ref, READERS[0], "valid")
    key = wait_state(ref, READERS[1], "invalid")
    assert (key["serial"], key["reason"]) == ("5002", "serial not in hardwareKey.pinSerials")
    assert unlisted.counts[0x20] == 0 and unlisted.tries_left == 3
    assert "the PIN is sent only to keys 5001 (hardwareKey.pinSerials)" in caplog.text
    assert "sending the PIN to key 5001 (no CA configured)" in caplog.text
    assert "to key 5002" not in caplog.text and TEST_PIN not in caplog.text


def test_no_pin_on_pin_key_is_pin_required(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor(pin=None)
    virtual_keys.plug(make_test_card(1005))
    assert wait_state(ref, READERS[0], "invalid")["reason"] == "PIN required"


def test_exclusive_holder_makes_reader_busy(start_actor, virtual_keys, make_test_card, card_holders) -> None:
    virtual_keys.plug(make_test_card(1006))
    holder = card_holders("exclusive", READERS[0])
    ref = start_actor()
    key = wait_state(ref, READERS[0], "reader_busy", timeout=5)
    assert key["reason"] == BUSY_MESSAGE
    gate = KeyGate(ref.proxy().live_check, timeout=5)
    with pytest.raises(FloatkeyError) as error:
        gate.check(None, ACTION)
    assert error.value.code == "hardware_key_reader_busy"
    holder.release()
    wait_state(ref, READERS[0], "valid")
    assert gate.check("1006", ACTION) == "1006"


def test_transaction_holder_makes_reader_busy_without_hang(
    start_actor, virtual_keys, make_test_card, card_holders
) -> None:
    virtual_keys.plug(make_test_card(1007))
    holder = card_holders("transaction", READERS[0])
    started = time.monotonic()
    ref = start_actor(pcsc_timeout=0.5)
    wait_state(ref, READERS[0], "reader_busy", timeout=5)
    assert time.monotonic() - started < 5
    gate = KeyGate(ref.proxy().live_check, timeout=5)
    began = time.monotonic()
    with pytest.raises(FloatkeyError) as error:
        gate.check("1007", ACTION)
    assert error.value.code == "hardware_key_reader_busy"
    assert time.monotonic() - began < 1
    holder.release()
    wait_state(ref, READERS[0], "valid")


def test_two_keys_in_two_readers(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    virtual_keys.plug(make_test_card(2001), port=35963)
    virtual_keys.plug(make_test_card(2002), port=35964)
    wait_state(ref, PORTS[35963], "valid")
    wait_state(ref, PORTS[35964], "valid")
    gate = KeyGate(ref.proxy().live_check, timeout=5)
    assert gate.check("2001", ACTION) == "2001"
    assert gate.check("2002", ACTION) == "2002"
    virtual_keys.pull(35963)
    with pytest.raises(FloatkeyError) as error:
        gate.check("2001", ACTION)
    assert error.value.code == "hardware_key_not_accessible"
    assert gate.check("2002", ACTION) == "2002"
    assert gate.check(None, ACTION) == "2002"


def test_ignored_readers(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor(ignore_readers=(READERS[1],))
    virtual_keys.plug(make_test_card(2003), port=35964)
    virtual_keys.plug(make_test_card(2004), port=35963)
    wait_state(ref, READERS[0], "valid")
    assert READERS[1] not in keys(ref)


def test_gate_fails_within_a_second_of_the_pull(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    virtual_keys.plug(make_test_card(3001))
    wait_state(ref, READERS[0], "valid")
    gate = KeyGate(ref.proxy().live_check, timeout=5)
    assert gate.check("3001", ACTION) == "3001"
    virtual_keys.keys[35963].unplug()
    pulled = time.monotonic()
    with pytest.raises(FloatkeyError) as error:
        gate.check("3001", ACTION)
    assert error.value.message == f"No available valid hardware key to perform the action: {ACTION}"
    assert time.monotonic() - pulled < 1.0
    with pytest.raises(FloatkeyError):
        gate.check(None, "borrowing license")


def test_gate_wrong_serial_is_not_accessible(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    virtual_keys.plug(make_test_card(3002))
    wait_state(ref, READERS[0], "valid")
    with pytest.raises(FloatkeyError) as error:
        KeyGate(ref.proxy().live_check, timeout=5).check("999", "adding consumption")
    assert error.value.code == "hardware_key_not_accessible"
    assert error.value.message.endswith(": adding consumption")


def test_gate_coalesces_concurrent_checks(start_actor, virtual_keys, make_test_card) -> None:
    ref = start_actor()
    card = make_test_card(3003)
    virtual_keys.plug(card)
    wait_state(ref, READERS[0], "valid")
    gate = KeyGate(ref.proxy().live_check, timeout=5)
    threads, rounds = 32, 50
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def hammer() -> None:
        barrier.wait()
        try:
            for _ in range(rounds):
                gate.check("3003", ACTION)
        except FloatkeyError as exc:
            failures.append(exc)

    before = card.counts[0xF8]
    workers = [threading.Thread(target=hammer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not failures
    live = card.counts[0xF8] - before
    assert 1 <= live < threads * rounds / 4, f"{live} live APDUs for {threads * rounds} checks"


def test_listener_base_is_a_no_op() -> None:
    base = HardwareKeyListener()
    base.on_event("key_connected", serial="1", reader="r")
    base.on_event("key_disconnected", serial="1", reader="r")
    assert issubclass(HardwareKeyListener, listener.Listener)
