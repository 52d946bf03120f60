"""The client's IP address, proxy-aware: one rule for the API and the UI's event socket.

The address is the connection's peer unless that peer is listed in `TRUSTED_PROXIES`
(IPs or CIDR networks, default none). Only then is the forwarding header read — the one
named by `TRUSTED_PROXY_HEADER`, `X-Forwarded-For` (what nginx, Caddy, Traefik and
HAProxy append) or RFC 7239 `Forwarded` — walking its hops from the right, skipping
trusted ones, to the first address that isn't trusted: everything left of it was written
by the client and may be forged. Only the configured header is read, because a proxy
that appends to one passes a forged value of the other through untouched.

A malformed hop stops the walk at the last address that is known good (the trusted proxy
that forwarded it): a broken or hostile header can never invent an address.
"""
from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Mapping

from booking_app.config import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: hops read at most (a longer header is cut: a client can't make us parse megabytes)
MAX_HOPS = 32
MAX_HEADER = 4096
MAX_PEER = 100


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """`"10.0.0.1, 172.16.0.0/12, ::1"` → networks. ValueError names a bad entry (a
    setting that can't be read must stop the app, not silently trust nobody or everybody)."""
    items = spec.split(",") if isinstance(spec, str) else spec
    networks = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {item!r}") from None
    return tuple(networks)


def parse_ip(text: str | None) -> IPAddress | None:
    """An address from a peer or a header hop: `1.2.3.4`, `1.2.3.4:80`, `::1`,
    `[::1]:80`, `"[::1]"`; IPv4-mapped IPv6 becomes IPv4; anything else is None."""
    if not text:
        return None
    text = text.strip().strip('"').strip()
    if not text or len(text) > MAX_PEER:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def _xff_hops(value: str) -> list[str]:
    return [hop.strip() for hop in value.split(",")]


def _forwarded_hops(value: str) -> list[str]:
    """The `for=` of each element of an RFC 7239 header (an element without one is "")."""
    hops = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            name, sep, val = pair.partition("=")
            if sep and name.strip().lower() == "for":
                found = val.strip()
        hops.append(found)
    return hops


def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str:
    """All values of header `name` joined by commas, in order (repeated fields are one list)."""
    if isinstance(headers, Mapping):
        getlist = getattr(headers, "getlist", None)
        values = getlist(name) if getlist is not None else [v for k, v in headers.items() if k.lower() == name]
    else:
        values = [v for k, v in headers if k.lower() == name]
    return ",".join(v for v in values if v)


def resolve(peer: str | None, headers: Mapping[str, str] | Iterable[tuple[str, str]], *,
            trusted: tuple[Network, ...], header: str = "x-forwarded-for") -> str | None:
    """The client address of a connection from `peer` carrying `headers` (see module doc)."""
    peer_ip = parse_ip(peer)
    if peer_ip is None:
        # not an IP (a unix socket, a test client): nothing to trust, keep what we were told
        return peer[:MAX_PEER] if peer else None
    if not _trusted(peer_ip, trusted):
        return str(peer_ip)
    value = _header(headers, header)
    if not value:
        return str(peer_ip)
    hops = (_forwarded_hops if header == "forwarded" else _xff_hops)(value[-MAX_HEADER:])
    if len(value) > MAX_HEADER:
        hops = hops[1:]  # the cut may have split the leftmost hop: never read half an address
    client = peer_ip
    for hop in reversed(hops[-MAX_HOPS:]):
        address = parse_ip(hop)
        if address is None:
            break  # garbage (or "unknown"): the proxy we trust is the last address we know
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


@functools.lru_cache(maxsize=8)
def _networks(spec: str) -> tuple[Network, ...]:
    return parse_networks(spec)


def client_ip(peer: str | None, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    """The client address under this process's settings (TRUSTED_PROXIES, TRUSTED_PROXY_HEADER)."""
    settings = get_settings()
    return resolve(peer, headers, trusted=_networks(settings.trusted_proxies), header=settings.trusted_proxy_header)


def bucket(ip: str | None) -> str | None:
    """The unit an address is counted in by per-IP limits: an IPv4 address, or the /64 of an
    IPv6 one (one subscriber usually holds a whole /64 and could rotate through it)."""
    address = parse_ip(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else (ip[:MAX_PEER] if ip else None)
