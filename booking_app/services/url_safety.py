"""The one rule for URLs the server itself fetches or posts to (webhooks, calendar subscriptions).

No SSRF: https only in production (http also elsewhere); no credentials in the URL; the host
must not be, or resolve to, a loopback, private (10/8, 172.16/12, 192.168/16, 100.64/10,
fc00::/7), link-local (169.254/16, fe80::/10), unspecified, multicast or otherwise reserved
address (IPv4-mapped IPv6 forms included). Checked when the URL is registered
(`check_url`: a 422) and again right before each request (`resolve_target`): DNS may have
changed meanwhile, so the caller connects to the address checked here, not to a new lookup.
`WEBHOOK_ALLOW_PRIVATE_TARGETS=true` lifts the address rule (tests, on-premises receivers).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import socket
from urllib.parse import urlsplit

from booking_app.config import get_settings
from booking_app.i18n import N_

MAX_URL_LENGTH = 2000

NOT_HTTPS = N_("The address must start with https://.")
NOT_HTTP = N_("The address must start with https:// or http://.")
BAD_URL = N_("This is not a valid web address.")
PRIVATE_TARGET = N_("This address points to a private or local network, which is not allowed.")
UNRESOLVABLE = N_("This address's host name could not be found.")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(ValueError):
    """The URL may not be used; `message` is a msgid for the user."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(detail or message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`ips`, in the order the resolver gave them)."""

    url: str
    scheme: str
    host: str  # lower-case name or IP literal (without brackets)
    port: int
    ips: tuple[IPAddress, ...]


def is_public_ip(ip: IPAddress) -> bool:
    """A globally routable unicast address (IPv4-mapped and 6to4/NAT64-free checks included)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public_ip(ip.ipv4_mapped)
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_multicast
            or ip.is_reserved or not ip.is_global):
        return False
    return True


def private_allowed() -> bool:
    return bool(get_settings().webhook_allow_private_targets)


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL, or UnsafeUrl."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        raise UnsafeUrl(BAD_URL)
    try:
        parts = urlsplit(url)  # "http://[::1" and "https://[x]/" raise ValueError
    except ValueError:
        raise UnsafeUrl(BAD_URL) from None
    scheme = parts.scheme.lower()
    production = get_settings().environment == "production"
    if scheme not in ("http", "https"):
        raise UnsafeUrl(NOT_HTTPS if production else NOT_HTTP)
    if production and scheme != "https":
        raise UnsafeUrl(NOT_HTTPS)
    if parts.username or parts.password or not parts.hostname or parts.fragment:
        raise UnsafeUrl(BAD_URL)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl(BAD_URL) from None
    return scheme, parts.hostname.lower().rstrip("."), port


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """The host's addresses (an IP literal is itself), or UnsafeUrl when it has none."""
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeUrl(UNRESOLVABLE) from None
    ips: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise UnsafeUrl(UNRESOLVABLE)
    return tuple(ips)


def resolve_target(url: str) -> Target:
    """Parse, resolve and check `url`: every address the name resolves to must be public
    (one private answer refuses it: a resolver may rotate answers). Raises UnsafeUrl."""
    scheme, host, port = parse(url)
    ips = resolve(host, port)
    if not private_allowed():
        bad = [ip for ip in ips if not is_public_ip(ip)]
        if bad:
            raise UnsafeUrl(PRIVATE_TARGET, f"{host} resolves to {bad[0]}")
    return Target(url=url, scheme=scheme, host=host, port=port, ips=ips)


def check_url(url: str) -> str:
    """`url` (stripped) if it may be registered, else UnsafeUrl (the caller answers 422)."""
    url = (url or "").strip()
    resolve_target(url)
    return url
