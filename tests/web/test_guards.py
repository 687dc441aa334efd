"""The pieces of web/guards.py that need no server: Host and Origin parsing, the host list."""

from __future__ import annotations

import pytest

from floatkey.app.config import Settings
from floatkey.web.guards import Guards, same_origin, split_host


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("lic.example.com", ("lic.example.com", None)),
        ("LIC.Example.com.:8080", ("lic.example.com", 8080)),
        ("127.0.0.1:80", ("127.0.0.1", 80)),
        ("[::1]:8080", ("::1", 8080)),
        ("[::1]", ("::1", None)),
    ],
)
def test_split_host(header: str, expected: tuple[str, int | None]) -> None:
    assert split_host(header) == expected


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("https://lic.example.com", "lic.example.com", True),  # TLS proxy: the server sees no port
        ("http://lic.example.com", "lic.example.com", True),
        ("http://lic.example.com:8080", "lic.example.com", False),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("http://127.0.0.1:3000", "127.0.0.1:8080", False),
        ("http://evil.example:8080", "127.0.0.1:8080", False),
        ("null", "127.0.0.1:8080", False),
        ("file://", "127.0.0.1:8080", False),
        ("http://127.0.0.1:99999", "127.0.0.1:8080", False),
        ("http://127.0.0.1:8080", None, False),
    ],
)
def test_same_origin(origin: str, host: str | None, same: bool) -> None:
    assert same_origin(origin, host) is same


def test_a_star_serves_any_host_name() -> None:
    guards = Guards(Settings(allowed_hosts=("*",)))
    assert guards.host_allowed("anything.example:8080")


def test_addresses_are_always_served_and_names_only_when_listed() -> None:
    guards = Guards(Settings(allowed_hosts=("lic.example.com",)))
    assert guards.host_allowed("lic.example.com:8080")
    assert guards.host_allowed("10.0.0.7") and guards.host_allowed("[fe80::1%25eth0]:8080")
    assert not guards.host_allowed("localhost")
    assert not guards.host_allowed("10.0.0.7.nip.io")
