import pytest

from floatkey.auth.client_address import client_address, networks

PROXIES = networks(["10.0.0.5", "fd00::/8", "192.168.1.0/24"])


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        # No trusted proxy in between: the TCP peer, whatever the header says.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("10.0.0.6", "198.51.100.1", "10.0.0.6"),
        # A trusted proxy names the client.
        ("10.0.0.5", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", " 198.51.100.1 ", "198.51.100.1"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        # Left of the nearest untrusted hop is the client's own say: ignored.
        ("10.0.0.5", "1.1.1.1, 198.51.100.1", "198.51.100.1"),
        # Chains of trusted proxies are walked through.
        ("10.0.0.5", "198.51.100.1, 192.168.1.20", "198.51.100.1"),
        ("10.0.0.5", "192.168.1.30, 192.168.1.20", "192.168.1.30"),
        # Without a header, or with one a proxy should never write, the peer.
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1, unknown", "10.0.0.5"),
        ("10.0.0.5", "198.51.100.1:4711", "10.0.0.5"),
    ],
)
def test_the_client_behind_trusted_proxies(peer, header, expected):
    assert client_address(peer, header, PROXIES) == expected


def test_without_trusted_proxies_the_header_means_nothing():
    assert client_address("10.0.0.5", "198.51.100.1", ()) == "10.0.0.5"


def test_entries_that_are_not_addresses_are_named():
    assert networks([" 127.0.0.1 ", "10.1.2.3/16"])[1].prefixlen == 16
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address or network"):
        networks(["10.0.0.1", "proxy.example"])
