"""Values storage cannot keep, given through the embedding API: each is refused with a
clear FloatkeyError before it reaches the storage writer, stores nothing, and fails
nobody else's write in the same group commit."""

import threading
import time

import pytest

from floatkey import ClientInfo, Floatkey, FloatkeyError, Settings
from floatkey.rules.consumption import Counter
from floatkey.rules.policy import Policy
from floatkey.storage import Storage
from floatkey.storage.records import license_key, license_record, load_book

INT64_MAX = 2**63 - 1


@pytest.fixture
def settings(tmp_path):
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def fk(settings):
    with Floatkey(settings, hardware_keys=False) as running:
        running.add_license(
            {
                "product": "cad",
                "floating_users": 100,
                "allow_unlimited_consumptions": True,
                "max_borrow_time": 24,
                "features": [
                    {"code": "f", "is_floating": True, "floating_users": 100},
                    {"code": "c", "feature_type": "consumption", "allow_unlimited_consumptions": True},
                ],
            }
        )
        yield running


def refused(call, *args, **kwargs) -> FloatkeyError:
    with pytest.raises(FloatkeyError) as err:
        call(*args, **kwargs)
    assert err.value.code == "validation_error", err.value.message
    return err.value


def policy(**fields) -> Policy:
    return Policy(**{"product": "cam", "product_name": "cam", "license_key": "K", **fields})


BAD_CALLS = {
    "user past LMDB's key size": (lambda fk: fk.register("cad", "u" * 600), "'user'"),
    "user of 101 emoji (404 bytes)": (lambda fk: fk.register("cad", "\U0001f600" * 101), "bytes"),
    "user with a lone surrogate": (lambda fk: fk.register("cad", "al\ud800ice"), "surrogates"),
    "user not a string": (lambda fk: fk.register("cad", 42), "a string"),
    "borrow user past the key size": (lambda fk: fk.borrow("cad", "u" * 600), "'user'"),
    "hostname with a lone surrogate": (
        lambda fk: fk.register("cad", "bob", client=ClientInfo(os_hostname="\udc80")),
        "'os_hostname'",
    ),
    "user_info too long": (
        lambda fk: fk.register("cad", "bob", client=ClientInfo(user_info="x" * 5000)),
        "'user_info'",
    ),
    "metadata 10**100": (
        lambda fk: fk.add_license({"product": "cam", "metadata": {"big": 10**100}}),
        "'metadata.big'",
    ),
    "metadata infinity": (
        lambda fk: fk.add_license({"product": "cam", "metadata": {"x": [1, float("inf")]}}),
        "'metadata.x[1]'",
    ),
    "metadata NaN": (
        lambda fk: fk.add_license({"product": "cam", "metadata": {"x": float("nan")}}),
        "finite",
    ),
    "metadata 1e400 in JSON text": (
        lambda fk: fk.add_license({"product": "cam", "metadata": '{"x": 1e400}'}),
        "'metadata.x'",
    ),
    "metadata too deep": (
        lambda fk: fk.add_license(
            {"product": "cam", "metadata": {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}
        ),
        "levels deep",
    ),
    "metadata not JSON-like": (
        lambda fk: fk.add_license({"product": "cam", "metadata": {"s": {1, 2}}}),
        "JSON",
    ),
    "customer past int64": (
        lambda fk: fk.add_license({"product": "cam", "customer": {"n": -(2**64)}}),
        "'customer.n'",
    ),
    "feature metadata past int64": (
        lambda fk: fk.add_license({"product": "cam", "features": [{"code": "g", "metadata": {"n": 2**64}}]}),
        "'features[0].metadata.n'",
    ),
    "Policy with metadata 10**100": (
        lambda fk: fk.add_policy(policy(metadata={"n": 10**100})),
        "'metadata.n'",
    ),
    "Policy with a bad product": (lambda fk: fk.add_policy(policy(product="c" * 600)), "'product'"),
    "Policy with seats past the bound": (
        lambda fk: fk.add_policy(policy(floating_users=2**70)),
        "floating_users",
    ),
    "consumption 10**30": (lambda fk: fk.add_consumption("cad", 10**30), "'consumptions'"),
    "consumption 1.5": (lambda fk: fk.add_consumption("cad", 1.5), "a whole number"),
    "feature consumption 2**64": (lambda fk: fk.add_feature_consumption("cad", "c", 2**64), "'consumptions'"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_an_unstorable_value_is_refused_clearly_and_stores_nothing(fk, case):
    call, named = BAD_CALLS[case]
    before = (fk.licenses(), fk.registrations(), stored(fk))
    error = refused(call, fk)
    assert named in error.message
    # Nothing of the license is stored (the audit trail records the refusal, as it should).
    assert (fk.licenses(), fk.registrations(), stored(fk)) == before
    assert fk.health()["storage"]["writable"] is True
    # The server writes on: the same license takes the next client.
    assert fk.register("cad", "next")["floating_slots_in_use"] == 1


def stored(fk):
    """Every license, seat and feature seat record on disk, and the next license id."""
    return [
        fk.storage.get("meta", b"next_license_id"),
        *(list(fk.storage.items(db)) for db in ("licenses", "seats", "feature_seats")),
    ]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_other_licenses_writes_in_the_same_commit_are_acknowledged_and_durable(settings):
    with Floatkey(settings, hardware_keys=False) as fk:
        fk.add_license({"product": "cad", "floating_users": 100})
        for i in range(8):
            fk.add_license({"product": f"other{i}", "floating_users": 10})
        storage = fk.storage
        # Hold the writer thread so that every write queued meanwhile shares one commit.
        entered, release = threading.Event(), threading.Event()

        def hold(_error):
            entered.set()
            release.wait(10)

        storage.on_durable(storage.write([("put", "meta", b"hold", 1)]), hold)
        assert entered.wait(10)
        base = storage.queued_seq
        outcomes: dict[str, object] = {}

        def act(name, call):
            try:
                outcomes[name] = call()
            except Exception as exc:  # collected, asserted below
                outcomes[name] = exc

        good = [
            threading.Thread(target=act, args=(f"other{i}", lambda i=i: fk.register(f"other{i}", "alice")))
            for i in range(8)
        ]
        for thread in good:
            thread.start()
        wait_for(lambda: storage.queued_seq >= base + 8)
        bad = threading.Thread(target=act, args=("bad", lambda: fk.register("cad", "u" * 600)))
        bad.start()
        # Refused at once, or (without validation) queued into the held commit.
        wait_for(lambda: "bad" in outcomes or storage.queued_seq >= base + 9)
        release.set()
        for thread in [*good, bad]:
            thread.join(10)
        assert isinstance(outcomes["bad"], FloatkeyError) and outcomes["bad"].code == "validation_error"
        for i in range(8):
            assert isinstance(outcomes[f"other{i}"], dict), outcomes[f"other{i}"]
        assert fk.health()["storage"]["writable"] is True
    with Floatkey(settings, hardware_keys=False) as fk:
        held = {(seat["product"], seat["user"]) for seat in fk.registrations()}
        assert held == {(f"other{i}", "alice") for i in range(8)}


def test_a_counter_stays_within_int64(settings):
    with Floatkey(settings, hardware_keys=False) as fk:
        lic = fk.add_license({"product": "cad", "allow_unlimited_consumptions": True})
    # A counter near the top, as years of unlimited metering could leave it.
    storage = Storage(settings.data_dir)
    try:
        book = load_book(storage, lic["id"])
        book.consumption = Counter(INT64_MAX - 10)
        storage.write_now([("put", "licenses", license_key(lic["id"]), license_record(book))])
    finally:
        storage.close()
    with Floatkey(settings, hardware_keys=False) as fk:
        error = refused(fk.add_consumption, "cad", 11)
        assert str(INT64_MAX) in error.message
        assert fk.add_consumption("cad", 10)["total_consumptions"] == INT64_MAX
        assert fk.health()["storage"]["writable"] is True
    with Floatkey(settings, hardware_keys=False) as fk:
        assert fk.licenses()[0]["total_consumptions"] == INT64_MAX
