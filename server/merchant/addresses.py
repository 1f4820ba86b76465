"""Where our servers may send a merchant's status callback (docs/openapi.md: Callback
address policy).

A callbackUrl comes from outside, and our servers fetch it: without a policy a
merchant could make us POST to loopback (Envoy's admin port), the cloud metadata
service (169.254.169.254) or the private network. So the host is resolved and
EVERY address it resolves to must be public — at charge time and again before each
attempt (DNS can change in between), and the attempt connects to the very address
that was checked (no second lookup a rebinding DNS could answer differently).

OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS=true also allows loopback and private
ranges, for local development and tests; link-local, multicast, unspecified and
reserved addresses stay refused whatever the setting."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the last 32 bits are the IPv4 address reached


class AddressRefused(ValueError):
    """The callbackUrl may not be fetched; the message says why (safe to show the merchant)."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def translated_ipv4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped ::ffff:a.b.c.d, NAT64)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None


def tunnelled_ipv4(ip: IP) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses a 6to4 or Teredo address reaches through."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    return [v4 for v4 in (ip.sixtofour, *(ip.teredo or ())) if v4 is not None]


def refusal_reason(ip: IP, allow_private: bool) -> str | None:
    """None when `ip` may be connected to; else why not."""
    translated = translated_ipv4(ip)
    if translated is not None:  # the IPv4 address is what is reached: judge that
        return refusal_reason(translated, allow_private)
    for inner in tunnelled_ipv4(ip):
        why = refusal_reason(inner, allow_private)
        if why:
            return why
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in THIS_NETWORK):
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_loopback:
        return None if allow_private else "loopback"
    if ip.is_reserved:
        return "reserved"
    if ip.is_global:
        return None
    if ip.is_private:  # 10/8, 172.16/12, 192.168/16, fc00::/7 ... (also documentation ranges)
        return None if allow_private else "private"
    return "not public"  # 100.64/10 (carrier-grade NAT) and the like


@dataclass(frozen=True)
class Target:
    """A callbackUrl with the checked address to connect to."""

    url: str
    scheme: str
    host: str  # as written (Host header, TLS server name)
    port: int
    address: str  # the checked IP


@dataclass(frozen=True)
class AddressPolicy:
    """Configuration, fixed when built: OPENAPI_CALLBACK_ALLOW_PRIVATE_NETWORKS, and how
    host names resolve (the system's resolver unless the composition root injects one)."""

    allow_private: bool = False
    resolver: Callable[[str, int], list[str]] = field(default=system_resolver)

    # The stack's own ports (Envoy admin, internal gRPC, metrics, the public door): refused on
    # loopback and private addresses even when allow_private lets those through.
    own_ports: frozenset[int] = frozenset()

    def check(self, url: str) -> Target:
        """Resolves the URL's host; raises AddressRefused unless every address is allowed."""
        try:
            parts = urlsplit(url)
            hostname = parts.hostname  # `http://[::1/`, `http://[zz]/`, `a]b`: ValueError
        except ValueError:
            raise AddressRefused("callbackUrl must be an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise AddressRefused("callbackUrl must be an http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise AddressRefused("callbackUrl must not carry credentials")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AddressRefused("callbackUrl has a bad port") from None
        host = hostname
        try:
            literal = ipaddress.ip_address(host)
            addresses = [str(literal)]
        except ValueError:
            try:
                addresses = self.resolver(host, port)
            except (OSError, UnicodeError):
                raise AddressRefused("callbackUrl host does not resolve") from None
        if not addresses:
            raise AddressRefused("callbackUrl host does not resolve")
        for text in addresses:
            why = refusal_reason(ipaddress.ip_address(text.split("%", 1)[0]), self.allow_private)
            if why:
                raise AddressRefused(f"callbackUrl resolves to a {why} address")
            if port in self.own_ports and refusal_reason(ipaddress.ip_address(text.split("%", 1)[0]), False):
                raise AddressRefused("callbackUrl points at one of this service's own ports")
        return Target(url, parts.scheme, host, port, addresses[0].split("%", 1)[0])
