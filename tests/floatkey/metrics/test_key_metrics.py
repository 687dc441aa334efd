"""Hardware-key figures of /metrics, through pcscd and a virtual key (run under flock /tmp/pcsc.lock)."""

from __future__ import annotations

from tests.floatkey.metrics.test_scrape import Samples, parse, value
from tests.support.server import ServerProcess, wait_until

KEY = 10012001
PORT = 35963


def samples(server: ServerProcess) -> Samples:
    answer = server.get("/metrics")
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def key_state(server: ServerProcess, state: str) -> float | None:
    return value(samples(server), "floatkey_hardware_key_state", serial=str(KEY), state=state)


def test_key_state_and_verification_age_follow_plug_and_pull(key_servers, virtual_keys, make_test_card):
    server = key_servers()
    wait_until(lambda: value(samples(server), "floatkey_pcsc_up") == 1, 15, what="pcscd seen")
    assert key_state(server, "valid") is None  # no key seen yet

    virtual_keys.plug(make_test_card(KEY), PORT)
    wait_until(lambda: key_state(server, "valid") == 1, 15, what="the key valid")
    now = samples(server)
    assert value(now, "floatkey_hardware_key_state", serial=str(KEY), state="invalid") == 0
    age = value(now, "floatkey_hardware_key_verification_age_seconds", serial=str(KEY))
    assert age is not None and 0 <= age < 60
    # The age grows between verifications (verifyInterval is 60 s by default).
    wait_until(
        lambda: (
            value(samples(server), "floatkey_hardware_key_verification_age_seconds", serial=str(KEY))
            > age + 0.05
        ),
        5,
        what="the verification age to grow",
    )

    server.add_license(product="cad", isHWKeyReq=True, floating_users=2)
    assert server.post("/api/v4/register", {"product": "cad", "user": "alice"}).status_code == 200
    virtual_keys.pull(PORT)
    wait_until(lambda: key_state(server, "valid") is None, 15, what="the key gone")
    refused = server.post("/api/v4/register", {"product": "cad", "user": "bob"})
    assert refused.json()["code"] == "hardware_key_not_accessible"
    after = samples(server)
    assert value(after, "floatkey_hardware_key_verification_age_seconds", serial=str(KEY)) is None
    assert value(after, "floatkey_refusals_total", code="hardware_key_not_accessible") == 1
