"""The key gate with a set of serials (a license file bound to several keys), no PC/SC."""

from __future__ import annotations

from typing import Any

import pykka
import pytest

from floatkey.errors import FloatkeyError
from floatkey.hardware.gate import KeyGate


def gate_seeing(*keys: tuple[str, str]) -> KeyGate:
    def live_check() -> pykka.Future[list[dict[str, Any]]]:
        future: pykka.ThreadingFuture[list[dict[str, Any]]] = pykka.ThreadingFuture()
        future.set([{"serial": serial, "state": state} for serial, state in keys])
        return future

    return KeyGate(live_check, timeout=5)


def test_any_valid_key_of_the_set_satisfies_the_check() -> None:
    gate = gate_seeing(("111", "invalid"), ("222", "valid"))
    assert gate.check(("111", "222"), "registering user") == "222"
    assert gate.check(["333", "222"], "registering user") == "222"


def test_no_key_of_the_set_keeps_the_v1_error() -> None:
    gate = gate_seeing(("111", "valid"))
    with pytest.raises(FloatkeyError) as refused:
        gate.check(("222", "333"), "registering user")
    assert refused.value.to_dict() == {
        "status": 400,
        "code": "hardware_key_not_accessible",
        "message": "No available valid hardware key to perform the action: registering user",
    }


def test_one_serial_still_means_that_key_only() -> None:
    gate = gate_seeing(("1112", "valid"))
    with pytest.raises(FloatkeyError):
        gate.check("111", "registering user")  # a string is one serial, not a set of digits
    assert gate.check("1112", "registering user") == "1112"
