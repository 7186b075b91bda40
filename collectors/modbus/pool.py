"""A pool of Modbus links: one per endpoint, shared by every meter behind it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from collectors.modbus.client import LinkOptions, ModbusLink
from collectors.modbus.endpoint import Endpoint, parse_endpoint


class LinkPool:
    """One `ModbusLink` per endpoint, created on first use with the pool's options.

    Example::

        async with LinkPool(LinkOptions(timeout=0.5)) as pool:
            words = await pool.link("tcp://127.0.0.1").read(block, unit_id=3)
    """

    def __init__(self, options: LinkOptions | None = None) -> None:
        self.options = options or LinkOptions()
        self._by_url: dict[str, ModbusLink] = {}
        self._by_endpoint: dict[Endpoint, ModbusLink] = {}

    def link(self, url: str) -> ModbusLink:
        """The link for `url`; URLs naming the same endpoint share one link."""
        if (link := self._by_url.get(url)) is None:
            endpoint = parse_endpoint(url)
            if (link := self._by_endpoint.get(endpoint)) is None:
                link = self._by_endpoint[endpoint] = ModbusLink(endpoint, self.options)
            self._by_url[url] = link
        return link

    def __len__(self) -> int:
        return len(self._by_endpoint)

    async def close(self) -> None:
        for link in self._by_endpoint.values():
            await link.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
