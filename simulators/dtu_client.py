"""A simulated 4G DTU: dials a `DtuListener`, registers, sends heartbeats, serves a bus.

It speaks the listener's default format: ``REG:<id>\\r\\n`` once per connection, then
``HB\\r\\n`` every ``heartbeat_interval`` seconds (only while no reply is on the wire);
both packets can be replaced. The meters behind it are a `SimulatedBus`, exactly as
behind a `Dlt645GatewaySimulator`.
"""

from __future__ import annotations

import asyncio
import contextlib

from .dlt645_gateway import SimulatedBus

__all__ = ["SimulatedDtu"]


class SimulatedDtu:
    """A DTU with id ``dtu_id`` that dials ``host:port``.

    ``heartbeat_interval`` None sends no heartbeats (setting it to None later stops them);
    ``redial`` (s) dials again after the link drops (None: stop). Example::

        dtu = SimulatedDtu("127.0.0.1", listener.port, dtu_id="YW0001", bus=meters)
        async with dtu:
            await listener.bus("YW0001").wait_connected(timeout=5.0)
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        dtu_id: str,
        bus: SimulatedBus,
        registration: bytes | None = None,
        heartbeat: bytes = b"HB\r\n",
        heartbeat_interval: float | None = 30.0,
        redial: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.dtu_id = dtu_id
        self.bus = bus
        self.registration = registration or f"REG:{dtu_id}\r\n".encode("ascii")
        self.heartbeat = heartbeat
        self.heartbeat_interval = heartbeat_interval
        self.redial = redial
        self.connections = 0
        self.heartbeats_sent = 0
        self._task: asyncio.Task[None] | None = None
        self._disconnected = asyncio.Event()

    async def wait_disconnected(self, *, timeout: float) -> None:
        """Wait until the current link has dropped (the listener closed it, or it failed)."""
        async with asyncio.timeout(timeout):
            await self._disconnected.wait()

    async def wait_stopped(self, *, timeout: float) -> None:
        """Wait until the DTU has given up (its link dropped and ``redial`` is None)."""
        if self._task is not None:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._task)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"dtu-{self.dtu_id}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> SimulatedDtu:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                await self._session(reader, writer)
            if self.redial is None:
                return
            await asyncio.sleep(self.redial)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._disconnected.clear()
        writer.write(self.registration)
        beats = asyncio.create_task(self._heartbeats(writer))
        try:
            await self.bus.serve(reader, writer)
        finally:
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)
            writer.close()
            self._disconnected.set()

    async def _heartbeats(self, writer: asyncio.StreamWriter) -> None:
        while not writer.is_closing() and self.heartbeat_interval is not None:
            await asyncio.sleep(self.heartbeat_interval)
            async with self.bus.line:
                writer.write(self.heartbeat)
                self.heartbeats_sent += 1
