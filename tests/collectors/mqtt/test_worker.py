"""The worker against the real broker and database: stored exactly once, acked once durable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from collectors.mqtt.payload import encode_payload
from collectors.mqtt.topics import readings_topic
from ingest.quarantine import Reason
from ingest.sink import IngestSink
from meterhub.settings import Settings
from simulators.mqtt_gateway import MqttGatewaySimulator, PublishRefusedError, linear_energy
from tests.collectors.mqtt.conftest import (
    T0,
    WorkerFactory,
    create_mqtt_meters,
    ensure_gateway_user,
    stored,
)

pytestmark = pytest.mark.integration

STEP = timedelta(minutes=15)


async def test_messages_end_in_readings_exactly(
    db: asyncpg.Connection,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    messages, steps = 40, 12
    async with worker_factory(sink) as worker:
        sent = await gateway.publish_stream(T0, messages=messages, steps=steps)
        await worker.wait_until(lambda s: s.acked == messages, timeout=60)
        stats = worker.stats
    assert sent == messages * steps * 8
    assert (stats.received, stats.acked, stats.stale, stats.unacked) == (messages, messages, 0, 0)
    assert (stats.readings, stats.accepted, stats.duplicates) == (sent, sent, 0)
    assert (stats.quarantined, stats.rejected_elements) == (0, 0)
    rows = await stored(db, meters.values())
    assert len(rows) == sent
    by_meter = {meter: channel for channel, meter in meters.items()}
    expected = {
        (meters[ch], T0 + k * STEP): linear_energy(ch, T0 + k * STEP)["energy"]
        for ch in gateway.channels
        for k in range(messages * steps)
    }
    assert {(r["meter_id"], r["ts"]): r["energy"] for r in rows} == expected
    assert {r["source"] for r in rows} == {f"mqtt:{gateway_id}"}
    assert all(r["power"] == 2.0 + by_meter[r["meter_id"]] for r in rows)


def _element(channel: object, ts: object = T0, **values: object) -> dict[str, object]:
    return {"channel": channel, "ts": ts, **(values or {"energy": 10.0})}


async def test_malformed_payloads_are_quarantined_and_acked(
    db: asyncpg.Connection,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    source = f"mqtt:{gateway_id}"
    whole = [
        (b"{not json", Reason.MALFORMED_PAYLOAD),
        (b"\xff\xfe\x00 garbage", Reason.MALFORMED_PAYLOAD),
        (b"[1, 2]", Reason.WRONG_TYPE),
        (
            b'{"v": 2, "gateway": "%s", "readings": []}' % gateway_id.encode(),
            Reason.MALFORMED_PAYLOAD,
        ),
        (encode_payload("gw-someone-else", [_element(1)], sent_at=T0), Reason.MALFORMED_PAYLOAD),
        (b'{"v": 1, "gateway": "%s"}' % gateway_id.encode(), Reason.MISSING_FIELD),
    ]
    elements: list[object] = [
        _element(1),
        _element(2, energy=11.5, power=3.0),
        _element("3"),
        {"channel": 4, "energy": 1.0},
        _element(5, "2026-03-01T08:00:00"),
        _element(99),
        _element(6, energy="12.5"),
        42,
        {"channel": 7, "ts": T0},
        _element(8, energy=-5.0),
    ]
    element_reasons = [
        Reason.WRONG_TYPE,
        Reason.MISSING_FIELD,
        Reason.NAIVE_TIMESTAMP,
        Reason.UNKNOWN_METER,
        Reason.WRONG_TYPE,
        Reason.WRONG_TYPE,
        Reason.MISSING_FIELD,
        Reason.NEGATIVE_VALUE,  # found by the ingest path, not the parser
    ]
    async with worker_factory(sink, end_session=False) as worker:
        for payload, _ in whole:
            await gateway.publish_raw(payload)
        await gateway.publish_elements(elements)  # type: ignore[arg-type]
        await worker.wait_until(lambda s: s.acked == len(whole) + 1, timeout=30)
        stats = worker.stats
    assert (stats.received, stats.acked, stats.unacked, stats.stale) == (7, 7, 0, 0)
    assert (stats.quarantined, stats.rejected_elements, stats.accepted) == (6, 7, 2)

    rows = await db.fetch(
        "SELECT reason, detail, payload, meter_id, ts FROM quarantine WHERE source = $1 "
        "ORDER BY id",
        source,
    )
    assert len(rows) == len(whole) + len(element_reasons)
    # Messages are committed by parallel writers: compare what, not in which order.
    assert sorted(r["reason"] for r in rows) == sorted(
        [str(reason) for _, reason in whole] + [str(reason) for reason in element_reasons]
    )
    payloads = {r["payload"] for r in rows}
    assert "{not json" in payloads
    assert "\\xff\\xfe\\u0000 garbage" in payloads
    details = " | ".join(r["detail"] for r in rows)
    assert "version 2" in details
    assert "gw-someone-else" in details
    unknown = next(r for r in rows if r["reason"] == Reason.UNKNOWN_METER)
    assert unknown["ts"] == T0 and '"channel":99' in unknown["payload"]
    negative = next(r for r in rows if r["reason"] == Reason.NEGATIVE_VALUE)
    assert negative["meter_id"] == meters[8]
    good = await stored(db, meters.values())
    assert [(r["meter_id"], r["energy"]) for r in good] == [(meters[1], 10.0), (meters[2], 11.5)]

    # Everything was acknowledged: the resumed session holds nothing but what comes next.
    async with worker_factory(sink) as again:
        await gateway.publish_readings(T0 + timedelta(days=1))
        await again.wait_until(lambda s: s.acked == 1, timeout=30)
        assert (again.stats.received, again.stats.accepted) == (1, 8)


async def test_failed_submit_is_not_acked_but_redelivered(
    db: asyncpg.Connection,
    mqtt_settings: Settings,
    sink: IngestSink,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
    tmp_path: Path,
) -> None:
    meters = await create_mqtt_meters(db, gateway_id, gateway.channels)
    broken = mqtt_settings.model_copy(
        update={
            "database_url": SecretStr("postgresql://nobody:x@127.0.0.1:1/none"),
            "spool_dir": tmp_path / "tiny-spool",
            "spool_max_bytes": 1,
        }
    )
    async with IngestSink(broken) as full_sink:
        # The resolver reads the real database; the sink can neither write nor spool.
        async with worker_factory(full_sink, end_session=False, drain_timeout=0.5) as worker:
            await gateway.publish_readings(T0, steps=3)
            await worker.wait_until(lambda s: s.submit_failures >= 1, timeout=30)
        assert (worker.stats.received, worker.stats.acked, worker.stats.unacked) == (1, 0, 1)
    assert await stored(db, meters.values()) == []

    async with worker_factory(sink) as again:
        await again.wait_until(lambda s: s.acked == 1, timeout=30)
        assert (again.stats.received, again.stats.accepted, again.stats.duplicates) == (1, 24, 0)
    assert len(await stored(db, meters.values())) == 24


async def test_a_gateway_cannot_publish_as_another(
    db: asyncpg.Connection,
    sink: IngestSink,
    broker_url: str,
    gateway: MqttGatewaySimulator,
    gateway_id: str,
    worker_factory: WorkerFactory,
) -> None:
    victim_id = f"{gateway_id}-v"
    victim_meters = await create_mqtt_meters(db, victim_id, [1, 2])
    password = ensure_gateway_user(victim_id)
    async with (
        worker_factory(sink, gateways=victim_id) as worker,
        MqttGatewaySimulator(broker_url, victim_id, password, channels=[1, 2]) as victim,
    ):
        forged = encode_payload(victim_id, [_element(1, energy=999.0)], sent_at=T0)
        with pytest.raises(PublishRefusedError) as refused:
            await gateway.publish_raw(forged, topic=readings_topic(victim_id))
        assert refused.value.reason_code == 0x87  # not authorised
        await victim.publish_readings(T0)
        await worker.wait_until(lambda s: s.acked == 1, timeout=30)
        assert (worker.stats.received, worker.stats.accepted) == (1, 2)
    rows = await stored(db, victim_meters.values())
    assert [r["energy"] for r in rows] == [
        linear_energy(1, T0)["energy"],
        linear_energy(2, T0)["energy"],
    ]
    assert (
        await db.fetchval("SELECT count(*) FROM quarantine WHERE source = $1", f"mqtt:{victim_id}")
        == 0
    )
