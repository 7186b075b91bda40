"""Fixtures of the fault suite (a broker and a PostgreSQL of its own) and its report: at the
end of a session that settled any ledger, a table of every scenario's counts and one JSON
line of the totals (also written to ``MHUB_RELIABILITY_REPORT`` when that is set)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from meterhub.settings import Settings
from tests.pg_cluster import PrivatePostgres
from tests.reliability.accounting import RESULTS, table
from tests.reliability.broker import PrivateBroker


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A running Mosquitto of this test alone (never the shared one on port 18830),
    configured by ``deploy/services.sh`` like the shared one; killed at the end."""
    broker = PrivateBroker(tmp_path / "run")
    broker.add_user("_setup", "unused")  # writes the configuration, secret and ACL
    broker.start()
    try:
        yield broker
    finally:
        broker.stop(signal.SIGKILL)


@pytest.fixture
def broker_settings(sink_settings: Settings, private_broker: PrivateBroker) -> Settings:
    """The session database and a tmp spool (tests/conftest.py), the private broker."""
    return sink_settings.model_copy(update={"mqtt_url": SecretStr(private_broker.ingest_url)})


@pytest.fixture(scope="session")
def cluster(base_settings: Settings) -> Iterator[PrivatePostgres]:
    """A migrated PostgreSQL of the fault suite's own (never the shared one), started;
    tests that stop it start it again before they end."""
    pg = PrivatePostgres.create(base_settings.run_dir)
    try:
        pg.start()
        asyncio.run(pg.prepare(base_settings.migrations_dir))
        yield pg
    finally:
        pg.destroy()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    lines = table(RESULTS)
    terminalreporter.section("fault suite: readings per scenario")
    for line in lines:
        terminalreporter.write_line(line)
