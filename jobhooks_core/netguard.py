"""The private-destination guard (JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS) and the TLS context.

For deployments that let users add subscriptions: a webhook URL must not reach the
deployment's own network (metadata services, databases, admin ports). The guard is an httpcore
network backend: it resolves the host once, refuses the connection unless every address is
globally routable, and connects to the address it vetted, so a DNS answer that changes between
the check and the connection (rebinding) cannot slip past. TLS still verifies, and sends SNI for,
the URL's host name: httpcore takes those from the URL, not from the address connected to.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlsplit

import httpcore

__all__ = [
    "DestinationRefused",
    "GuardedBackend",
    "classify",
    "literal_refusal",
    "ssl_context",
]

GUARD_ENV = "JOBHOOKS_REFUSE_PRIVATE_DESTINATIONS"
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class DestinationRefused(httpcore.ConnectError):
    """The guard refused to connect: the destination is not a public address."""


def ssl_context(ca_bundle: Path | str | None) -> ssl.SSLContext | None:
    """The context for HTTPS: None (httpcore's default: verified against certifi's bundle),
    or one verified against ``ca_bundle`` alone (JOBHOOKS_CA_BUNDLE)."""
    if ca_bundle is None:
        return None
    return ssl.create_default_context(cafile=str(ca_bundle))


def classify(address: str) -> str | None:
    """Why ``address`` (an IP literal) is refused — "a loopback address", … — or None when it
    is globally routable. An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:…``,
    6to4 ``2002:…``) is judged by the IPv4 address it carries."""
    ip: IPAddress = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ip.sixtofour or ip
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    )
    for attribute, kind in checks:
        if getattr(ip, attribute):
            return kind
    if not ip.is_global:
        return "a special-purpose address that is not globally routable"
    return None


def refusal(host: str, address: str, kind: str) -> str:
    """The error message for a refused destination."""
    where = address if host == address else f"{host} resolves to {address}"
    return f"{where}, {kind}; refused because {GUARD_ENV} is on"


def literal_refusal(url: str) -> str | None:
    """For ``jobhooks check``: why the guard will refuse ``url`` whatever DNS says (its host is
    ``localhost`` or a non-public IP literal), else None."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback name; refused because {GUARD_ENV} is on"
    try:
        kind = classify(host)
    except ValueError:
        return None  # a name: judged when it is resolved, at each connection
    return None if kind is None else refusal(host, host, kind)


def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (once, in the resolver's order, without duplicates)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:  # as httpcore's own backend reports it
        raise httpcore.ConnectError(str(exc)) from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, refusing every destination that ``judge`` names a reason for.

    ``resolve`` and ``judge`` are parameters so a test can show the mechanism on loopback.
    """

    def __init__(
        self,
        inner: httpcore.NetworkBackend | None = None,
        *,
        resolve: Resolver = resolve,
        judge: Callable[[str], str | None] = classify,
    ) -> None:
        self._inner = inner or httpcore.SyncBackend()
        self._resolve = resolve
        self._judge = judge

    def vetted(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; DestinationRefused if any of them is not public."""
        addresses = self._resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            kind = self._judge(address)
            if kind is not None:
                raise DestinationRefused(refusal(host, address, kind))
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.vetted(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the host's next address, as socket.create_connection does
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise DestinationRefused(f"unix socket {path}; refused because {GUARD_ENV} is on")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
