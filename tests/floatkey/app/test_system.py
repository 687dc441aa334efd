"""The actor system through the embedding API: real actors, real LMDB, an injected clock."""

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pykka
import pytest

from floatkey import Floatkey, FloatkeyError, Settings
from floatkey.actors.directory import IndexHolder, LicenseCell, LicenseEntry, LicenseIndex
from floatkey.actors.hardware_key import HardwareKeyActor
from floatkey.actors.license import Envelope, Sweep
from floatkey.app import sweeper as sweeping
from floatkey.app.sweeper import SWEEP_GROUP, Sweeper
from floatkey.app.system import EXIT_NO_HARDWARE_KEY
from floatkey.errors import key_not_accessible
from floatkey.rules.policy import policy_from_fields
from tests.support.server import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data", expiry_sweep_interval=0.02)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fk(settings, clock):
    with Floatkey(settings, clock=clock) as running:
        yield running


def code_of(call, *args, **kwargs):
    with pytest.raises(FloatkeyError) as err:
        call(*args, **kwargs)
    return err.value.code


def test_seat_expires_without_traffic(fk, clock):
    fk.add_license({"product": "cad", "floating_users": 1, "floating_timeout": 1})
    fk.register("cad", "alice")
    clock.advance(seconds=59)
    assert len(fk.registrations()) == 1
    clock.advance(seconds=1)
    wait_until(lambda: fk.registrations() == [], timeout=5, what="the sweeper to free the seat")
    fk.register("cad", "bob")


def test_a_wave_over_more_licenses_than_one_sweep_group_frees_every_seat(fk, clock):
    count = 2 * SWEEP_GROUP + 3
    for n in range(count):
        fk.add_license({"product": f"p{n}", "floating_users": 2, "floating_timeout": 1})
        fk.register(f"p{n}", "alice")
        fk.register(f"p{n}", "bob")
    assert len(fk.registrations()) == 2 * count
    clock.advance(seconds=61)
    wait_until(lambda: fk.registrations() == [], timeout=10, what="every seat of the wave to be freed")


def test_newest_license_of_a_product_is_meant_without_an_id(fk):
    first = fk.add_license({"product": "cad", "floating_users": 1})
    second = fk.add_license({"product": "cad", "floating_users": 1})
    fk.register("cad", "alice")
    assert fk.registrations()[0]["license_id"] == second["id"]
    fk.register("cad", "bob", license_id=first["id"])
    other = fk.add_license({"product": "cam"})
    assert code_of(fk.register, "cad", "carol", license_id=other["id"]) == "license_not_found"
    assert code_of(fk.register, "cad", "carol", license_id=999) == "license_not_found"
    assert code_of(fk.register, "nope", "carol") == "unknown_product"


def test_state_is_restored_after_a_restart(settings, clock):
    with Floatkey(settings, clock=clock) as fk:
        lic = fk.add_license(
            {
                "product": "cad",
                "floating_users": 2,
                "max_consumptions": 10,
                "features": [
                    {"code": "f", "is_floating": True},
                    {"code": "c", "feature_type": "consumption", "max_consumption": 4},
                ],
            }
        )
        fk.register("cad", "alice")
        fk.feature_register("cad", "f", "alice")
        fk.add_consumption("cad", 3)
        fk.add_feature_consumption("cad", "c", 2)
    with Floatkey(settings, clock=clock) as fk:
        [restored] = fk.licenses()
        assert restored["id"] == lic["id"]
        assert restored["floating_in_use_devices"] == 1
        assert restored["total_consumptions"] == 3
        features = {f["code"]: f for f in restored["product_features"]}
        assert features["f"]["floating_in_use_devices"] == 1
        assert features["c"]["total_consumptions"] == 2
        assert code_of(fk.feature_register, "cad", "f", "bob") == "registration_not_found"
        second = fk.add_license({"product": "cam"})
        assert second["id"] == lic["id"] + 1


def test_remove_license_frees_its_seats_for_good(settings, clock):
    with Floatkey(settings, clock=clock) as fk:
        lic = fk.add_license({"product": "cad"})
        fk.register("cad", "alice")
        fk.remove_license(license_id=lic["id"])
        assert code_of(fk.register, "cad", "alice") == "unknown_product"
        assert fk.registrations() == []
    with Floatkey(settings, clock=clock) as fk:
        assert fk.licenses() == []


def test_force_release_and_release_all(fk):
    lic = fk.add_license(
        {
            "product": "cad",
            "floating_users": 5,
            "features": [{"code": "f", "is_floating": True, "floating_users": 5}],
        }
    )
    for user in ("a", "b", "c"):
        fk.register("cad", user)
        fk.feature_register("cad", "f", user)
    fk.force_release(lic["id"], "a")
    assert {r["user"] for r in fk.registrations()} == {"b", "c"}
    assert code_of(fk.force_release, lic["id"], "a") == "registration_not_found"
    fk.feature_release_all()
    assert all(r["features"] == [] for r in fk.registrations())
    fk.unregister_all()
    assert fk.registrations() == []


class NoKey:
    def __init__(self):
        self.asked = []

    def check(self, serial, action):
        self.asked.append((serial, action))
        raise key_not_accessible(action)


class PresentKey:
    def check(self, serial, action):
        return "12345678" if serial is None else serial


def test_key_bound_license_checks_its_key_before_every_action(settings, clock):
    with Floatkey(settings, clock=clock, keys=PresentKey()) as fk:
        lic = fk.add_license({"product": "cad", "isHWKeyReq": True})
        assert lic["is_hardware_key_auth"] is True
        fk.add_license({"product": "plain"})
    keys = NoKey()
    with Floatkey(settings, clock=clock, keys=keys) as fk:
        with pytest.raises(FloatkeyError) as err:
            fk.register("cad", "alice")
        assert err.value.message == "No available valid hardware key to perform the action: registering user"
        assert keys.asked == [("12345678", "registering user")]
        fk.register("plain", "alice")  # a plain license never asks for a key
        assert len(keys.asked) == 1


def test_crash_if_no_hardware_key_exits_with_its_status(settings, clock):
    with Floatkey(settings, clock=clock, keys=PresentKey()) as fk:
        fk.add_license({"product": "cad", "isHWKeyReq": True})
        fk.add_license({"product": "plain"})
        fk.register("plain", "kept")
    exits = []
    crashing = replace(settings, crash_if_no_hardware_key=True)
    with Floatkey(crashing, clock=clock, keys=NoKey(), exit_process=exits.append) as fk:
        with pytest.raises(FloatkeyError):
            fk.register("cad", "alice")
        assert exits == [EXIT_NO_HARDWARE_KEY]
        assert [r["user"] for r in fk.registrations()] == ["kept"]


def test_with_hardware_keys_disabled_no_reader_is_touched_and_key_bound_licenses_refuse(settings, clock):
    off = replace(settings, hardware_key=replace(settings.hardware_key, enabled=False))
    with Floatkey(off, clock=clock) as fk:
        assert fk.hardware_key_status()["pcsc"] == "unavailable"
        assert (
            code_of(fk.add_license, {"product": "cad", "isHWKeyReq": True}) == "hardware_key_not_accessible"
        )
        assert pykka.ActorRegistry.get_by_class(HardwareKeyActor) == []


def test_seats_that_ended_while_the_server_was_down_are_freed_after_a_restart(settings, clock):
    with Floatkey(settings, clock=clock) as fk:
        fk.add_license(
            {
                "product": "cad",
                "floating_users": 2,
                "floating_timeout": 1,
                "features": [{"code": "f", "is_floating": True}],
            }
        )
        fk.register("cad", "alice")
        fk.feature_register("cad", "f", "alice")
        clock.advance(seconds=30)
        fk.register("cad", "bob")
    clock.advance(seconds=45)
    with Floatkey(settings, clock=clock) as fk:
        [lic] = fk.licenses()
        assert lic["floating_in_use_devices"] == 1
        assert lic["product_features"][0]["floating_in_use_devices"] == 0
        wait_until(
            lambda: [r["user"] for r in fk.registrations()] == ["bob"],
            timeout=5,
            what="alice's ended seat to be swept after the restart",
        )
        fk.register("cad", "carol")
    with Floatkey(settings, clock=clock) as fk:
        assert sorted(r["user"] for r in fk.registrations()) == ["bob", "carol"]


class SweepProbe(pykka.ThreadingActor):
    """Stands in for a LicenseActor: records its sweeps, can fail or hold one until released."""

    def __init__(
        self, swept: list[int], license_id: int, fail: bool = False, hold: threading.Event | None = None
    ) -> None:
        super().__init__()
        self.swept, self.license_id, self.fail, self.hold = swept, license_id, fail, hold

    def on_receive(self, message: Any) -> None:
        assert isinstance(message, Envelope) and isinstance(message.message, Sweep)
        if self.hold is not None:
            self.hold.wait()
        if self.fail:  # what a LicenseActor answers when a bug raises in a handler
            message.ticket.answer = FloatkeyError("internal_error", "a bug in one license")
        else:
            self.swept.append(self.license_id)
        message.ticket.release(None)


def probe_board(probes: dict[int, pykka.ActorRef]) -> IndexHolder:
    holder = IndexHolder()
    holder.publish(
        LicenseIndex(
            {
                lid: LicenseEntry(
                    license_id=lid,
                    product=f"p{lid}",
                    key_serial=None,
                    requires_key=False,
                    cell=LicenseCell.running(ref),
                )
                for lid, ref in probes.items()
            }
        )
    )
    holder.due.update({lid: datetime(2026, 1, 1, tzinfo=UTC) for lid in probes})  # all due
    return holder


def test_one_license_failing_its_sweep_does_not_stop_the_others(caplog):
    swept: list[int] = []
    count = SWEEP_GROUP + 2
    refs = {lid: SweepProbe.start(swept, lid, fail=(lid == 1)) for lid in range(count)}
    try:
        sweeper = Sweeper(probe_board(refs), 3600, Clock(), timeout=10)
        assert sweeper.sweep_due() == count
        assert sorted(swept) == [lid for lid in range(count) if lid != 1]
        assert "license 1 failed to sweep its seats" in caplog.text
    finally:
        for ref in refs.values():
            ref.stop()


def test_stop_cuts_a_long_sweep_short(monkeypatch):
    # Resting a billion times as long as a group took, capped at the hour-long interval:
    # after the first group only the stop can end the rest.
    monkeypatch.setattr(sweeping, "SWEEP_SHARE", 1e-9)
    swept: list[int] = []
    release = threading.Event()
    refs = {lid: SweepProbe.start(swept, lid, hold=release) for lid in range(2 * SWEEP_GROUP)}
    try:
        sweeper = Sweeper(probe_board(refs), 3600, Clock(), timeout=10)
        done = threading.Thread(target=sweeper.sweep_due, daemon=True)
        done.start()
        release.set()  # the first group finishes; the sweeper starts its rest
        wait_until(lambda: len(swept) == SWEEP_GROUP, what="the first group to be swept")
        sweeper._stopped.set()  # what stop() does before it joins the thread
        done.join(timeout=30)
        assert not done.is_alive()
        assert len(swept) == SWEEP_GROUP  # the second group was never told
    finally:
        for ref in refs.values():
            ref.stop()


def test_embedding_dates_are_checked_like_client_dates(fk, clock):
    """Out-of-range, naive or out-of-order datetimes from embedding code are the caller's
    mistake (validation_error) and change nothing, never a server failure."""
    fk.add_license(
        {"product": "emb", "max_borrow_time": 24, "features": [{"code": "f", "is_floating": True}]}
    )
    minus_five = timezone(timedelta(hours=-5))
    for until in (datetime(9999, 12, 31, 23, tzinfo=minus_five), datetime(2026, 3, 2, 13, 0)):
        assert code_of(fk.borrow, "emb", "u", borrowed_until=until) == "validation_error"
        assert fk.registrations() == []
    fk.register("emb", "u")
    assert (
        code_of(fk.feature_register, "emb", "f", "u", borrow_until=datetime(2026, 3, 2, 13))
        == "validation_error"
    )
    assert fk.registrations()[0]["features"] == []
    policy = policy_from_fields({"product": "emb2"})
    for dates in (
        {"validity_period": datetime(2027, 1, 1)},
        {"start_date": clock.now + timedelta(days=2), "validity_period": clock.now + timedelta(days=1)},
    ):
        assert code_of(fk.add_policy, replace(policy, **dates)) == "validation_error"
    assert code_of(fk.licenses, "emb2") == "unknown_product"
