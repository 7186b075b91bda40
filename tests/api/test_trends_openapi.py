"""The trend endpoints are documented: tags, summaries, parameters, media types, examples."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from meterhub.settings import Settings
from tests.support import in_process_api

pytestmark = pytest.mark.integration

PATHS = (
    "/v1/trends/series",
    "/v1/trends/top",
    "/v1/trends/intensity",
    "/v1/trends/production-state",
)


@pytest.fixture
async def schema(api_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    async with in_process_api(api_settings) as http:
        response = await http.get("/openapi.json")
        assert response.status_code == 200
        yield response.json()


async def test_every_trend_endpoint_is_documented(schema: dict[str, Any]) -> None:
    for path in PATHS:
        operation = schema["paths"][path]["get"]
        assert operation["tags"] == ["trends"], path
        assert operation["summary"] and operation["description"], path
        for parameter in operation["parameters"]:
            assert parameter.get("description"), (path, parameter["name"])
        ok = operation["responses"]["200"]["content"]
        assert set(ok) == {
            "application/json",
            "text/csv",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }, path
        assert ok["application/json"]["example"]["items" if path != PATHS[0] else "buckets"]
        assert ok["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
        for status in ("401", "403", "422"):
            assert operation["responses"][status]["content"]["application/problem+json"], path
    names = {p["name"] for p in schema["paths"]["/v1/trends/series"]["get"]["parameters"]}
    assert {"scope", "id", "granularity", "start", "end", "compare", "format"} <= names
    assert "X-API-Key" in schema["components"]["securitySchemes"]["APIKeyHeader"]["name"]
