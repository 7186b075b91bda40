"""Where collectors may connect: the ``MHUB_COLLECT_NETWORKS`` allow-list.

A registered address is data anyone with a registrar key can write; without a check the
collector would dial wherever it points (server-side request forgery). The registry
refuses an address outside the allow-list, and the collector checks again right before
each dial, after resolving the host: a name that resolves to any address outside is
refused, and the dial then goes to the checked address, not to a second lookup.

Example::

    policy = DialPolicy(settings.collect_networks)
    link = await policy.pinned("tcp://127.0.0.1:8899")   # DialRefusedError if outside
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from collectors.errors import CollectorError
from collectors.targets import PollTarget
from meterhub.settings import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SETTING = "MHUB_COLLECT_NETWORKS"
#: The default allow-list: this machine only.
LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
)
#: Seconds a name may take to resolve before the dial (or registration) is refused.
RESOLVE_TIMEOUT = 2.0
#: URLs with an IP literal a policy remembers as checked (a lookup-free check, but one per
#: poll of tens of thousands of meters a minute costs a collector a good share of its CPU).
_MAX_PINS = 100_000


class DialRefusedError(CollectorError):
    """The host is outside ``MHUB_COLLECT_NETWORKS`` (or cannot be resolved): not dialled."""

    code = "dial_refused"


def dialled_host(protocol: str, address: dict[str, Any]) -> str | None:
    """The host a meter's registered address makes a collector connect to (None: it
    dials nothing, e.g. a DTU that dials in, a serial port, MQTT or the grid feed)."""
    if protocol == "modbus":
        host = address.get("host")
        return str(host) if host is not None else None
    if protocol == "dlt645":
        bus = str(address.get("bus", ""))
        return url_host(bus) if bus.startswith("tcp://") else None
    return None


def url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DialPolicy:
    """The networks collectors may connect to. URLs whose host is an IP literal are checked
    once and remembered (the answer cannot change); names are resolved at every dial."""

    networks: Sequence[IPNetwork] = LOOPBACK
    _literal_pins: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.networks)

    def describe(self) -> str:
        return ", ".join(map(str, self.networks)) or "nothing"

    def _refusal(self, host: str, outside: Iterable[IPAddress]) -> str:
        shown = ", ".join(map(str, outside))
        named = host if shown == host else f"{host} ({shown})"
        return f"{named} is not in {SETTING} ({self.describe()}): not dialled"

    async def resolve(self, host: str) -> list[IPAddress]:
        """Every address ``host`` stands for, each inside the allow-list, else
        `DialRefusedError` (an IP literal is not looked up)."""
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            addresses = await _lookup(host)
        if not addresses:
            raise DialRefusedError(f"{host} does not resolve: not dialled")
        outside = [ip for ip in addresses if not self.allows(ip)]
        if outside:
            raise DialRefusedError(self._refusal(host, outside))
        return addresses

    async def pinned(self, url: str) -> str:
        """``url`` (``scheme://host:port``) with its host replaced by a checked address,
        so that the connection goes where the check looked."""
        if (known := self._literal_pins.get(url)) is not None:
            return known
        parts = urlsplit(url)
        host = parts.hostname
        if host is None:
            raise DialRefusedError(f"{url} names no host: not dialled")
        ip = (await self.resolve(host))[0]
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        pinned = parts._replace(netloc=netloc).geturl()
        if _is_literal(host):
            if len(self._literal_pins) >= _MAX_PINS:
                self._literal_pins.clear()
            self._literal_pins[url] = pinned
        return pinned

    async def checked(self, target: PollTarget) -> PollTarget:
        """``target`` as it may be dialled: its link pinned to a checked address (unchanged
        if it dials nothing), else `DialRefusedError`."""
        if dialled_host(target.protocol, target.address) is None:
            return target
        link = await self.pinned(target.link)
        return target if link == target.link else replace(target, link=link)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _lookup(host: str) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise DialRefusedError(f"{host} does not resolve ({exc}): not dialled") from exc
    seen: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        seen[ipaddress.ip_address(str(sockaddr[0]).split("%")[0])] = None
    return list(seen)
