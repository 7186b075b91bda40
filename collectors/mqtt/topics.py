"""The topic scheme: ``meterhub/v1/{gateway_id}/readings``, shared as ``$share/{group}/...``.

The broker's ACL lets a gateway publish only under ``meterhub/v1/<its user name>/``, so the
gateway id in a topic is authenticated; the one inside a payload is not. Pure.
"""

from __future__ import annotations

import re

#: Every topic of protocol version 1 lives under this prefix.
PREFIX = "meterhub/v1"
#: The last topic level of a gateway's reading batches.
READINGS = "readings"

#: Gateway ids double as broker user names and topic levels (see deploy/services.sh).
GATEWAY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SHARE_NAME = re.compile(r"[^/+#]+")


def readings_topic(gateway_id: str) -> str:
    """The topic a gateway publishes its reading batches to.

    Example::

        readings_topic("gw-0001")  # 'meterhub/v1/gw-0001/readings'
    """
    if not GATEWAY_ID.fullmatch(gateway_id):
        raise ValueError(f"gateway id {gateway_id!r} must match {GATEWAY_ID.pattern}")
    return f"{PREFIX}/{gateway_id}/{READINGS}"


def shared_filter(group: str, gateways: str = "+") -> str:
    """The shared subscription an ingest worker of ``group`` takes; ``gateways`` is ``+``
    (every gateway) or one gateway id.

    Example::

        shared_filter("ingest")  # '$share/ingest/meterhub/v1/+/readings'
    """
    if not _SHARE_NAME.fullmatch(group):
        raise ValueError(f"share group {group!r} must be non-empty without '/', '+' or '#'")
    if gateways != "+" and not GATEWAY_ID.fullmatch(gateways):
        raise ValueError(f"gateways must be '+' or a gateway id, not {gateways!r}")
    return f"$share/{group}/{PREFIX}/{gateways}/{READINGS}"


def gateway_of(topic: str) -> str | None:
    """The gateway id of a readings topic, or None if ``topic`` is not one."""
    head, sep, rest = topic.partition(PREFIX + "/")
    if head or not sep:
        return None
    gateway_id, sep, kind = rest.partition("/")
    if not sep or kind != READINGS or not GATEWAY_ID.fullmatch(gateway_id):
        return None
    return gateway_id
