"""The SSRF guard decides on resolved addresses without connecting anywhere."""

import pytest

from pipeline.fetch import AddressGuard, Origin, is_public, origin_of
from pipeline.reasons import ItemError

FEED = "http://127.0.0.1:8080/feed.xml"  # the operator's feed: its origin, and only that, is trusted


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:8080/a",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://192.168.1.1/",
        "http://localhost/",
        "http://[::ffff:0:7f00:1]/",  # translated forms of loopback, by literal
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:7f00:1::1]/",
    ],
)
def test_non_public_addresses_are_blocked(url):
    with pytest.raises(ItemError) as err:
        AddressGuard().resolve(url, FEED)
    assert err.value.reason == "blocked_address"


def test_the_operators_feed_origin_is_trusted_and_nothing_else():
    guard = AddressGuard()
    assert guard.resolve("http://127.0.0.1:8080/x", FEED) == ("127.0.0.1", 8080, ["127.0.0.1"])
    assert guard.resolve("HTTP://127.0.0.1:8080/y", origin_of(FEED))[1] == 8080
    for url in [
        "http://127.0.0.1/x",  # port 80: another origin on the same host
        "http://127.0.0.1:8081/x",
        "https://127.0.0.1:8080/x",  # another scheme
        "http://localhost:8080/x",  # another host name for the same address
    ]:
        with pytest.raises(ItemError) as err:
            guard.resolve(url, FEED)
        assert err.value.reason == "blocked_address", url
    with pytest.raises(ItemError):
        guard.resolve("http://127.0.0.1:8080/x")  # a fetch that trusts nothing


def test_default_ports_belong_to_the_origin():
    assert origin_of("http://Example.COM/a") == Origin("http", "example.com", 80)
    assert origin_of("https://example.com:443/a") == Origin("https", "example.com", 443)
    assert origin_of("https://[::1]:8443/") == Origin("https", "::1", 8443)
    assert AddressGuard().resolve("http://127.0.0.1:80/x", "http://127.0.0.1/feed")[1] == 80
    for bad in ["127.0.0.1", "ftp://127.0.0.1/", "http://user@127.0.0.1/", "http://127.0.0.1:99999/", "/path"]:
        assert origin_of(bad) is None, bad


def test_guard_wide_trust_is_by_origin_and_refuses_bare_hosts():
    guard = AddressGuard()
    guard.allow([FEED])  # a fetcher that serves this one feed only (a backfill)
    assert guard.resolve("http://127.0.0.1:8080/page")[2] == ["127.0.0.1"]
    with pytest.raises(ItemError) as err:
        guard.resolve("http://127.0.0.1:8081/page")
    assert err.value.reason == "blocked_address"
    with pytest.raises(ValueError):
        guard.allow(["127.0.0.1"])  # the old host-name exemption is gone, loudly


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080@127.0.0.2/",  # the request would go to 127.0.0.2
        "http://user:pw@127.0.0.1:8080/",
        "http://127.0.0.1:8080\\@127.0.0.2/",
        "http://@127.0.0.1:8080/",
    ],
)
def test_user_information_is_refused(url):
    with pytest.raises(ItemError) as err:
        AddressGuard().resolve(url, FEED)
    assert err.value.reason == "bad_url"


def test_public_literal_is_allowed():
    assert AddressGuard().resolve("https://93.184.216.34/")[2] == ["93.184.216.34"]
    assert AddressGuard().resolve("https://93.184.216.34/", FEED)[2] == ["93.184.216.34"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/"])
def test_other_schemes_are_refused(url):
    with pytest.raises(ItemError) as err:
        AddressGuard().resolve(url, FEED)
    assert err.value.reason == "bad_url"


# Issue 13, item 7: an IPv6 form that carries an IPv4 address is as public as that address.
ADDRESSES = [
    # (address, public, what it is)
    ("93.184.216.34", True, "public IPv4"),
    ("2606:4700::1111", True, "public IPv6"),
    ("127.0.0.1", False, "loopback"),
    ("10.0.0.1", False, "private"),
    ("100.64.0.1", False, "shared address space (CGNAT)"),
    ("169.254.169.254", False, "link-local (cloud metadata)"),
    ("0.1.2.3", False, "this network"),
    ("192.0.0.8", False, "IETF protocol assignment (3.11's table calls it global)"),
    ("192.88.99.1", False, "6to4 relay anycast"),
    ("198.18.0.1", False, "benchmarking"),
    ("240.0.0.1", False, "reserved"),
    ("255.255.255.255", False, "broadcast"),
    ("224.0.0.1", False, "multicast"),
    ("::", False, "unspecified"),
    ("::1", False, "IPv6 loopback"),
    ("fe80::1%lo", False, "link-local with a zone"),
    ("fc00::1", False, "unique local"),
    ("fec0::1", False, "site-local"),
    ("ff02::1", False, "IPv6 multicast"),
    ("2001:db8::1", False, "documentation"),
    ("3fff::1", False, "documentation (RFC 9637)"),
    ("100::1", False, "discard prefix"),
    ("5f00::1", False, "SRv6 SIDs"),
    ("::ffff:127.0.0.1", False, "IPv4-mapped loopback"),
    ("::ffff:93.184.216.34", True, "IPv4-mapped public"),
    ("::127.0.0.1", False, "IPv4-compatible loopback"),
    ("::10.0.0.1", False, "IPv4-compatible private"),
    ("::93.184.216.34", True, "IPv4-compatible public"),
    ("::ffff:0:7f00:1", False, "IPv4-translated (SIIT) loopback"),
    ("::ffff:0:5db8:d822", True, "IPv4-translated public"),
    ("64:ff9b::7f00:1", False, "NAT64 of loopback"),
    ("64:ff9b::a9fe:a9fe", False, "NAT64 of the metadata address"),
    ("64:ff9b::5db8:d822", True, "NAT64 of a public address"),
    ("64:ff9b:1::5db8:d822", False, "local-use NAT64 prefix"),
    ("2002:7f00:1::1", False, "6to4 of loopback"),
    ("2002:a00:1::1", False, "6to4 of 10.0.0.1"),
    ("2002:5db8:d822::1", True, "6to4 of a public address"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False, "Teredo, client 127.0.0.1 (obfuscated)"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False, "Teredo, client 10.0.0.1"),
    ("2001:0:7f00:1:8000:63bf:a247:2dd", False, "Teredo, server 127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:a247:2dd", True, "Teredo, public server and client"),
]


@pytest.mark.parametrize(("address", "public", "what"), ADDRESSES, ids=[a[0] for a in ADDRESSES])
def test_is_public(address, public, what):
    assert is_public(address) is public, what
