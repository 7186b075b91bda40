"""The MQTT path of the fault suite: a simulated gateway publishing a paced QoS 1 stream
(message n: every channel at T0 + n minutes), counted as delivered only on PUBACK 0 (a 16,
"no matching subscribers", is published again by the gateway), and its ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from collectors.errors import TransportError
from simulators.mqtt_gateway import MqttGatewaySimulator, linear_energy
from tests.collectors.mqtt.conftest import T0
from tests.reliability.accounting import Ledger

CHANNELS = tuple(range(1, 9))
STEP = timedelta(minutes=1)


async def _publish(gateway: MqttGatewaySimulator, n: int) -> bool:
    try:
        await gateway.publish_elements(gateway.elements(T0 + n * STEP))
    except (TransportError, TimeoutError):
        return False
    return True


async def paced_stream(gateway: MqttGatewaySimulator, *, messages: int, rate: float) -> list[bool]:
    """Publish message 0 .. messages-1 at about ``rate`` messages per second; for each,
    whether the broker acknowledged it as delivered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks: list[asyncio.Task[bool]] = []
    for n in range(messages):
        tasks.append(asyncio.create_task(_publish(gateway, n)))
        if (ahead := started + (n + 1) / rate - loop.time()) > 0:
            await asyncio.sleep(ahead)
    return await asyncio.gather(*tasks)


def mqtt_ledger(scenario: str, meters: dict[int, int], delivered: list[bool]) -> Ledger:
    """``meters``: channel -> meter id; ``delivered``: per message, whether PUBACK 0 came."""
    ledger = Ledger(scenario)
    ledger.send(
        ((meter, T0 + n * STEP), linear_energy(channel, T0 + n * STEP)["energy"])
        for n in range(len(delivered))
        for channel, meter in meters.items()
    )
    ledger.ack(
        (meter, T0 + n * STEP) for n, ok in enumerate(delivered) if ok for meter in meters.values()
    )
    return ledger
