"""Which addresses the server may call out to (webhook targets): public ones, plus an explicit allow-list."""
from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = "Callback URLs must point outside this network: not a private, loopback or link-local address."
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class EgressRefused(Exception):
    """A connection to an address the policy refuses (raised at send time, after resolving the name)."""


def parse_networks(value: str | Iterable[str] | None) -> tuple[Network, ...]:
    """``WEBHOOK_ALLOWED_NETWORKS``: comma-separated CIDRs such as ``127.0.0.1/32,10.1.2.0/24``.

    ValueError names the entry that is not a network.
    """
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network in CIDR form, e.g. 127.0.0.1/32") from None
    return tuple(networks)


def literal_address(host: str) -> Address | None:
    """The address a host names without DNS, in every spelling a resolver accepts: dotted, IPv6 (also
    IPv4-mapped), and the legacy inet_aton forms (``0x7f.1``, ``2130706433``, ``0177.0.0.1``)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def unwrap(address: Address) -> Address:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64-style IPv6 address, else the address itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_allowed(address: Address, allowed: Iterable[Network] = ()) -> bool:
    """True for a public (globally routable) address, or one inside an allow-listed network."""
    if any(address.version == net.version and address in net for net in allowed):
        return True
    inner = unwrap(address)
    if inner is not address and any(inner.version == net.version and inner in net for net in allowed):
        return True
    return all(a.is_global and not a.is_multicast for a in {address, inner})


def url_problem(url: str, allowed: Iterable[Network] = ()) -> str | None:
    """Registration-time check of an http(s) URL's host, without DNS: a literal address must be allowed,
    and local names (localhost, *.localhost) are refused unless 127.0.0.1 is allow-listed. Names are
    resolved and checked again when a delivery is sent (see ``resolve``)."""
    allowed = tuple(allowed)
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return "Not a valid URL."
    address = literal_address(host)
    if address is None and (host in LOCAL_NAMES or host.endswith(".localhost")):
        address = ipaddress.IPv4Address("127.0.0.1")
    if address is not None and not address_allowed(address, allowed):
        return REFUSED
    return None


def resolve(host: str, port: int, allowed: Iterable[Network] = ()) -> list[tuple]:
    """getaddrinfo results for ``host`` when every address it resolves to is allowed; EgressRefused names
    the first one that is not. Callers connect to these addresses, never resolving the name again."""
    allowed = tuple(allowed)
    infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address_allowed(address, allowed):
            raise EgressRefused(f"{host} resolves to {address}, which is not allowed: {REFUSED}")
    return infos
