"""/readyz: anyone learns what is up, only a keyed caller why; probes share one broker check."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from api import health
from api.app import create_app
from meterhub.settings import Settings
from meterhub.supervise import Backoff
from tests.api.conftest import Keys

pytestmark = pytest.mark.integration

CHECKS = {"database", "broker", "collectors", "intervals", "spool", "workers"}


async def test_anonymous_gets_status_words_only(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-API-Key": "mh_00000000_not-a-real-key-at-all-000"}):
        response = await client.get("/readyz", headers=headers)
        body = response.json()
        assert set(body["checks"]) == CHECKS
        assert body["status"] in ("ok", "unavailable")
        assert all(set(check) == {"ok"} for check in body["checks"].values()), body


@pytest.mark.parametrize("role", ["bureau", "admin", "field", "town", "grid"])
async def test_a_key_of_any_role_gets_details(
    client: httpx.AsyncClient, keys: Keys, role: str
) -> None:
    body = (await client.get("/readyz", headers=keys.headers(role))).json()
    assert body["checks"]["database"]["detail"].startswith("timescaledb ")
    assert body["checks"]["broker"] == {
        "ok": True,
        "detail": "connected",
        "latency_ms": body["checks"]["broker"]["latency_ms"],
    }


async def test_probes_share_one_broker_connection(
    client: httpx.AsyncClient, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[str] = []
    real = health._mqtt_connect

    def counted(url: str, timeout: float) -> str | None:
        connects.append(url)
        return real(url, timeout)

    monkeypatch.setattr(health, "_mqtt_connect", counted)
    answers = await asyncio.gather(*(client.get("/readyz") for _ in range(20)))
    answers += [await client.get("/readyz", headers=keys.headers("town")) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert len(connects) == 1  # one real broker check served all 25 probes
    latencies = {a.json()["checks"]["broker"].get("latency_ms") for a in answers[20:]}
    assert len(latencies) == 1  # the same cached result


async def test_the_broker_check_is_repeated_after_its_ttl() -> None:
    calls = 0

    async def slow_check(url: str, *, timeout: float = 2.0) -> health.Check:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return health.Check("broker", True, "connected", 50.0)

    probe = health.BrokerProbe("mqtt://127.0.0.1:18830", ttl=0.2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(health, "check_broker", slow_check)
        await asyncio.gather(*(probe.check() for _ in range(10)))
        assert calls == 1  # concurrent probes waited for the one check under way
        await asyncio.sleep(0.25)
        await probe.check()
    assert calls == 2


async def test_a_worker_waiting_to_restart_makes_the_api_unready(
    api_settings: Settings, keys: Keys
) -> None:
    app = create_app(api_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        assert (await http.get("/readyz")).json()["checks"]["workers"] == {"ok": True}

        async def broken() -> None:
            raise RuntimeError("a derivation bug")

        app.state.supervisor.start("test-worker", broken, backoff=Backoff(first=30))
        await asyncio.sleep(0.05)
        anonymous = await http.get("/readyz")
        assert anonymous.status_code == 503
        assert anonymous.json()["checks"]["workers"] == {"ok": False}
        keyed = (await http.get("/readyz", headers=keys.headers("bureau"))).json()
        detail = keyed["checks"]["workers"]["detail"]
        assert "test-worker restarting after RuntimeError: a derivation bug" in detail


async def test_a_stalled_interval_backlog_makes_the_api_unready(api_settings: Settings) -> None:
    """No interval worker here (a separate `meterhub derive` expected) and a range marked an
    hour ago: stalled past a one-minute limit, not past a longer one."""
    alone = api_settings.model_copy(update={"interval_worker": False})
    app = create_app(alone.model_copy(update={"interval_stall_after": 60.0}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        pool = app.state.pool
        mark = await pool.fetchval(
            "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs, marked_at) "
            "VALUES ('{-1}', ARRAY[now()], ARRAY[now()], now() - interval '1 hour') RETURNING id"
        )
        try:
            anonymous = await http.get("/readyz")
            assert anonymous.status_code == 503
            assert anonymous.json()["checks"]["intervals"] == {"ok": False}
            app.state.settings = alone.model_copy(update={"interval_stall_after": 86_400.0})
            relaxed = (await http.get("/readyz")).json()["checks"]["intervals"]
            assert relaxed == {"ok": True}
        finally:
            await pool.execute("DELETE FROM interval_dirty WHERE id = $1", mark)


async def test_a_keyed_caller_gets_the_backlog_and_the_worker_state(
    api_settings: Settings, keys: Keys
) -> None:
    """The figures behind the intervals check: the ranges and the oldest's age as the
    database has them, and whose worker derives them (none here, then one crashing)."""
    alone = api_settings.model_copy(update={"interval_worker": False})
    app = create_app(alone)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        pool = app.state.pool
        marks = await pool.fetch(
            "INSERT INTO interval_dirty (meter_ids, ts_mins, ts_maxs, marked_at) "
            "SELECT '{-1}', ARRAY[now()], ARRAY[now()], now() - make_interval(secs => s) "
            "FROM unnest(ARRAY[90, 30, 10]) AS s RETURNING id"
        )
        try:
            expected = await pool.fetchrow(
                "SELECT sum(ranges) AS n, "
                "extract(epoch FROM now() - min(marked_at))::float8 AS age FROM interval_dirty"
            )
            keyed = (await http.get("/readyz", headers=keys.headers("field"))).json()
            intervals = keyed["checks"]["intervals"]
            assert intervals["ranges"] == expected["n"] >= 3
            assert intervals["ranges_capped"] is False
            assert intervals["oldest_age_seconds"] == pytest.approx(expected["age"], abs=2)
            assert intervals["oldest_age_seconds"] >= 90
            assert intervals["worker"] == {
                "state": "elsewhere",
                "uptime_seconds": None,
                "last_pass_age_seconds": None,
                "restarts": 0,
                "last_error": None,
            }
            assert f"{expected['n']} dirty range(s)" in intervals["detail"]
            assert "meterhub derive expected" in intervals["detail"]
            anonymous = (await http.get("/readyz")).json()["checks"]["intervals"]
            assert set(anonymous) == {"ok"}  # no figures without a key

            async def crashing() -> None:
                raise RuntimeError("a derivation bug")

            app.state.supervisor.start(
                health.INTERVAL_WORKER_TASK, crashing, backoff=Backoff(first=30)
            )
            await asyncio.sleep(0.05)
            keyed = (await http.get("/readyz", headers=keys.headers("bureau"))).json()
            worker = keyed["checks"]["intervals"]["worker"]
            assert (worker["state"], worker["last_error"]) == (
                "restarting",
                "RuntimeError: a derivation bug",
            )
        finally:
            await pool.execute(
                "DELETE FROM interval_dirty WHERE id = ANY($1)", [m["id"] for m in marks]
            )


async def test_a_running_worker_reports_its_passes(api_settings: Settings, keys: Keys) -> None:
    app = create_app(api_settings.model_copy(update={"interval_worker": True}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        async with asyncio.timeout(10):
            while True:
                body = (await http.get("/readyz", headers=keys.headers("grid"))).json()
                worker = body["checks"]["intervals"]["worker"]
                if worker["last_pass_age_seconds"] is not None:
                    break
                await asyncio.sleep(0.05)
        assert worker["state"] == "running"
        assert worker["uptime_seconds"] >= worker["last_pass_age_seconds"] >= 0
        assert "worker running for" in body["checks"]["intervals"]["detail"]
