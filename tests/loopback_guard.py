"""A process-wide guard, installed for every test session: a socket connect (or sendto)
to anything but this machine raises before a packet leaves, and every attempt is recorded.

It is a CPython audit hook (``socket.connect`` / ``socket.sendto`` events), not a patch: it
sees every connect made through the socket module, asyncio's included, and cannot be
turned off by the code under test.
"""

from __future__ import annotations

import ipaddress
import sys
from typing import Any

#: Every (host, port) a connect was attempted to, in order (the refused ones included).
ATTEMPTS: list[tuple[str, int]] = []
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}
_installed = False


class OutboundConnectError(ConnectionRefusedError):
    """A test tried to reach an address off this machine."""


def is_local(host: str) -> bool:
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.sendto"):
        return
    address = args[1]
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return  # a Unix socket path
    host, port = address[0], int(address[1]) if len(address) > 1 else 0
    ATTEMPTS.append((host, port))
    if not is_local(host):
        raise OutboundConnectError(f"test traffic to {host}:{port} refused (loopback only)")


def install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
