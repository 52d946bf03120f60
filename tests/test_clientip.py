"""The client address behind proxies (services/clientip.py) and the growing-delay arithmetic
(services/ratelimit.Backoff): pure functions, no database."""
from __future__ import annotations

import datetime as dt

import pytest

from booking_app.services.clientip import bucket, parse_ip, parse_networks, resolve

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1, fd00::/8, ::1")


def xff(value: str) -> dict[str, str]:
    return {"x-forwarded-for": value}


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    # nobody trusted: the peer, whatever the header says
    ("198.51.100.7", xff("1.2.3.4"), "198.51.100.7"),
    # a trusted proxy: the hop it saw
    ("10.0.0.2", xff("203.0.113.9"), "203.0.113.9"),
    # a forged hop left of the real one is never reached
    ("10.0.0.2", xff("6.6.6.6, 203.0.113.9"), "203.0.113.9"),
    # two trusted proxies in a row are skipped, the first untrusted address wins
    ("10.0.0.2", xff("6.6.6.6, 203.0.113.9, 192.168.1.1, 10.1.2.3"), "203.0.113.9"),
    # every hop trusted: the farthest one
    ("10.0.0.2", xff("10.9.9.9"), "10.9.9.9"),
    # no header from a trusted proxy: the proxy itself
    ("10.0.0.2", {}, "10.0.0.2"),
    # garbage where the client should be: the last address known good (the proxy)
    ("10.0.0.2", xff("203.0.113.9, not-an-ip"), "10.0.0.2"),
    ("10.0.0.2", xff("203.0.113.9, 10.0.0.7, unknown"), "10.0.0.2"),
    ("10.0.0.2", xff("203.0.113.9, 10.0.0.7, , "), "10.0.0.2"),
    ("10.0.0.2", xff("\x00\xff, 999.1.1.1"), "10.0.0.2"),
    # garbage left of the client doesn't matter
    ("10.0.0.2", xff("%%%, 203.0.113.9"), "203.0.113.9"),
    # ports, IPv6, brackets, IPv4-mapped peers, IPv6 proxies
    ("10.0.0.2", xff("203.0.113.9:4711"), "203.0.113.9"),
    ("10.0.0.2", xff("2001:db8::1"), "2001:db8::1"),
    ("10.0.0.2", xff("[2001:db8::1]:443"), "2001:db8::1"),
    ("10.0.0.2", xff("2001:DB8:0:0::1"), "2001:db8::1"),
    ("::ffff:10.0.0.2", xff("203.0.113.9"), "203.0.113.9"),
    ("::1", xff("2001:db8::5"), "2001:db8::5"),
    ("fd00::1", xff("203.0.113.9, fd12::3"), "203.0.113.9"),
    ("2001:db8::9", xff("203.0.113.9"), "2001:db8::9"),
    # a peer that isn't an IP (a unix socket, a test client) is kept as it is
    ("testclient", xff("1.2.3.4"), "testclient"),
    (None, xff("1.2.3.4"), None),
])
def test_x_forwarded_for(peer, headers, expected):
    assert resolve(peer, headers, trusted=PROXIES) == expected


def test_repeated_headers_are_one_list_in_order():
    pairs = [("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "203.0.113.9"), ("host", "x")]
    assert resolve("10.0.0.2", pairs, trusted=PROXIES) == "203.0.113.9"


def test_a_huge_header_is_cut_not_parsed_whole():
    hops = ", ".join(["10.0.0.1"] * 100_000 + ["203.0.113.9"])
    assert resolve("10.0.0.2", xff(hops), trusted=PROXIES) == "203.0.113.9"
    # past the hop limit the walk stops at the farthest trusted hop it read
    assert resolve("10.0.0.2", xff("203.0.113.9, " + ", ".join(["10.0.0.1"] * 100)), trusted=PROXIES) == "10.0.0.1"


@pytest.mark.parametrize(("value", "expected"), [
    ("for=203.0.113.9", "203.0.113.9"),
    ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ("for=6.6.6.6, for=203.0.113.9;proto=https;by=10.0.0.2", "203.0.113.9"),
    ("For=203.0.113.9 ; Proto=http", "203.0.113.9"),
    ("for=unknown", "10.0.0.2"),
    ("for=_hidden, for=203.0.113.9", "203.0.113.9"),
    ("proto=https", "10.0.0.2"),
    (";;;=,,", "10.0.0.2"),
])
def test_forwarded(value, expected):
    assert resolve("10.0.0.2", {"forwarded": value}, trusted=PROXIES, header="forwarded") == expected


def test_only_the_configured_header_is_read():
    # a proxy that appends X-Forwarded-For passes a forged Forwarded through untouched
    headers = {"x-forwarded-for": "203.0.113.9", "forwarded": "for=6.6.6.6"}
    assert resolve("10.0.0.2", headers, trusted=PROXIES) == "203.0.113.9"
    assert resolve("10.0.0.2", headers, trusted=PROXIES, header="forwarded") == "6.6.6.6"


def test_parse_networks():
    nets = parse_networks(" 10.0.0.0/8 ,,192.168.1.5/24, 2001:db8::/32 ")
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]
    assert parse_networks("") == ()
    for bad in ("10.0.0.0/33", "example.com", "1.2.3", "*"):
        with pytest.raises(ValueError):
            parse_networks(bad)


def test_settings_refuse_a_bad_trusted_proxies(monkeypatch):
    from pydantic import ValidationError

    from booking_app.config import Settings

    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, nonsense")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.1/8 , ::1 ")
    assert Settings().trusted_proxies == "10.0.0.0/8,::1/128"


def test_client_ip_follows_the_settings(monkeypatch):
    from booking_app.config import reset_settings_cache
    from booking_app.services.clientip import client_ip

    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    reset_settings_cache()
    assert client_ip("10.0.0.2", xff("203.0.113.9")) == "10.0.0.2"  # default: trust nobody
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    reset_settings_cache()
    assert client_ip("10.0.0.2", xff("203.0.113.9")) == "203.0.113.9"
    monkeypatch.setenv("TRUSTED_PROXY_HEADER", "forwarded")
    reset_settings_cache()
    assert client_ip("10.0.0.2", {"forwarded": "for=198.51.100.1", **xff("203.0.113.9")}) == "198.51.100.1"
    monkeypatch.undo()
    reset_settings_cache()


def test_parse_ip_and_bucket():
    assert parse_ip(" 203.0.113.9 ") is not None and parse_ip("[::1") is None and parse_ip("") is None
    assert parse_ip("x" * 1000) is None
    assert bucket("203.0.113.9") == "203.0.113.9"
    # one IPv6 subscriber holds a /64: its addresses are one bucket
    assert bucket("2001:db8:1:2:aaaa::1") == bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert bucket("::ffff:203.0.113.9") == "203.0.113.9"
    assert bucket("testclient") == "testclient" and bucket(None) is None


def test_backoff_grows_and_is_capped():
    from booking_app.services.ratelimit import Backoff

    rule = Backoff(free=3, base=2, cap=60, window=dt.timedelta(hours=1))
    assert [rule.delay(n) for n in range(10)] == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]
    assert rule.delay(10**9) == 60


def test_the_wait_is_told_in_the_users_language():
    from booking_app.services.ratelimit import limited

    short, long = limited(8), limited(900)
    assert short.retry_after == 8 and long.retry_after == 900
    assert "8" in short.translated("de") and short.translated("de") != short.translated("en")
    assert "15" in long.translated("fr") and long.translated("fr") != long.translated("en")


def test_the_ui_applies_the_same_rule_to_its_socket(monkeypatch):
    """AppState._client_ip: the event socket's peer and handshake headers (Reflex fills
    router.session.client_ip with the peer and router.headers.raw_headers with every header)."""
    from types import SimpleNamespace

    from booking_app.config import reset_settings_cache
    from booking_app.ui.state.base import AppState

    def state(peer: str, headers: dict[str, str]):
        return SimpleNamespace(router=SimpleNamespace(session=SimpleNamespace(client_ip=peer),
                                                      headers=SimpleNamespace(raw_headers=headers)))

    behind_proxy = state("10.0.0.2", {"x-forwarded-for": "6.6.6.6, 203.0.113.9", "host": "example.org"})
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    reset_settings_cache()
    assert AppState._client_ip(behind_proxy) == "10.0.0.2"
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8")
    reset_settings_cache()
    assert AppState._client_ip(behind_proxy) == "203.0.113.9"
    assert AppState._client_ip(state("198.51.100.9", {"x-forwarded-for": "203.0.113.9"})) == "198.51.100.9"
    assert AppState._client_ip(state("", {})) is None
    monkeypatch.undo()
    reset_settings_cache()
