"""Deliveries and the ack window: unsettled deliveries in arrival order, acked in that order.

MQTT 5 (section 4.6) asks a receiver to send PUBACKs in the order the PUBLISH packets came
in; commits can finish out of order, so a settled delivery waits here for the ones before it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


class Delivery(NamedTuple):
    """One received PUBLISH. ``generation`` names the connection it came in on;
    ``received_at`` is `time.monotonic` at arrival. (A named tuple: one per message.)"""

    mid: int
    qos: int
    topic: str
    payload: bytes
    generation: int
    received_at: float


@dataclass(slots=True)
class Slot:
    """A delivery's place in the window; ``durable`` is None until it is settled."""

    delivery: Delivery
    durable: bool | None = None


class AckWindow:
    """Open a slot per delivery as it arrives; settle slots when their fate is known.

    Example::

        slot = window.open(delivery)
        ...
        for ready in window.settle([slot], durable=True):
            ...  # in arrival order: ack ready.delivery if ready.durable, else release it
    """

    def __init__(self) -> None:
        self._slots: deque[Slot] = deque()

    def __len__(self) -> int:
        return len(self._slots)

    def open(self, delivery: Delivery) -> Slot:
        slot = Slot(delivery)
        self._slots.append(slot)
        return slot

    def settle(self, slots: Iterable[Slot], *, durable: bool) -> list[Slot]:
        """Record the fate of ``slots``; returns the settled slots now at the head, in
        arrival order (each slot once, however many calls it takes to reach the head)."""
        for slot in slots:
            slot.durable = durable
        ready: list[Slot] = []
        pending = self._slots
        while pending and pending[0].durable is not None:
            ready.append(pending.popleft())
        return ready
