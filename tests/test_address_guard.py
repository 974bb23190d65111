"""The SSRF guard decides on resolved addresses without connecting anywhere."""

import pytest

from pipeline.fetch import AddressGuard
from pipeline.reasons import ItemError


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
    ],
)
def test_non_public_addresses_are_blocked(url):
    guard = AddressGuard({"127.0.0.1"})
    with pytest.raises(ItemError) as err:
        guard.resolve(url)
    assert err.value.reason == "blocked_address"


def test_the_operators_feed_host_is_allowed():
    host, port, addresses = AddressGuard({"127.0.0.1"}).resolve("http://127.0.0.1:9/x")
    assert (host, port, addresses) == ("127.0.0.1", 9, ["127.0.0.1"])


def test_public_literal_is_allowed():
    assert AddressGuard().resolve("https://93.184.216.34/")[2] == ["93.184.216.34"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/", "gopher://127.0.0.1/"])
def test_other_schemes_are_refused(url):
    with pytest.raises(ItemError) as err:
        AddressGuard({"127.0.0.1"}).resolve(url)
    assert err.value.reason == "bad_url"
