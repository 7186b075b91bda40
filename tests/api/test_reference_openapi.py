"""The reference-data and firm-attribute endpoints are documented: summaries, descriptions,
described parameters, request and response schemas with examples, the problems they answer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from meterhub.settings import Settings
from tests.support import in_process_api

pytestmark = pytest.mark.integration

NEW = re.compile(r"^/v1/(reference/|firms/(\{firm_id\}/)?(lists|projects))")


@pytest.fixture
async def schema(api_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    async with in_process_api(api_settings) as http:
        response = await http.get("/openapi.json")
        assert response.status_code == 200
        yield response.json()


def _resolve(schema: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref:
        resolved: dict[str, Any] = schema["components"]["schemas"][ref["$ref"].split("/")[-1]]
        return resolved
    return ref


def _has_examples(schema: dict[str, Any], model: dict[str, Any]) -> bool:
    model = _resolve(schema, model)
    if "examples" in model:
        return True
    return any("examples" in _resolve(schema, p) for p in model.get("properties", {}).values())


async def test_every_new_endpoint_is_documented(schema: dict[str, Any]) -> None:
    operations = [
        (path, method, op)
        for path, ops in schema["paths"].items()
        if NEW.match(path)
        for method, op in ops.items()
    ]
    assert len(operations) == 24
    for path, method, op in operations:
        where = (method, path)
        assert op["summary"] and op["description"], where
        for parameter in op.get("parameters", []):
            assert parameter.get("description"), (where, parameter["name"])
        for status in ("401", "403"):
            assert op["responses"][status]["content"]["application/problem+json"], where
        if path.endswith("/import"):
            content = op["requestBody"]["content"]
            assert content["text/csv"]["example"].count("\n") >= 2, where
            assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in content
            ok = op["responses"]["200"]["content"]["application/json"]["schema"]
            assert ok["$ref"].endswith("/ImportResult"), where
            continue
        if method in ("post", "patch"):
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert _has_examples(schema, body), where
        if method == "delete" and "schemes" in path:
            assert "204" in op["responses"], where
            continue
        status = "201" if "201" in op["responses"] else "200"
        ok = op["responses"][status]["content"]["application/json"]
        model = ok["schema"].get("items", ok["schema"])
        assert _has_examples(schema, model), where


MODELS: tuple[str, ...] = ("Holiday", "GridFactor", "Benchmark", "Scheme", "Indicator")
MODELS += ("MembershipIn", "Membership", "MembershipEnd", "ProjectIn", "Project", "ImportResult")


async def test_examples_name_no_address_but_loopback(schema: dict[str, Any]) -> None:
    mine = [ops for path, ops in schema["paths"].items() if NEW.match(path)]
    mine += [schema["components"]["schemas"][name] for name in MODELS]
    text = json.dumps(mine, ensure_ascii=False)
    assert "2027-02-06" in text and "91330782MA0000005K" in text  # the examples are there
    addresses = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    assert addresses <= {"127.0.0.1"}
