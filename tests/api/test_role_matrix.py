"""Every endpoint x every role -> the expected status. A new endpoint must be added here."""

from __future__ import annotations

import re

import httpx
import pytest

from api.app import create_app
from meterhub.settings import Settings
from tests.api.conftest import Keys

pytestmark = pytest.mark.integration

ROLES = ("bureau", "admin", "field", "town", "grid")
PUBLIC = None  # no key needed
READ = {"bureau", "admin", "town"}
BUREAU = {"bureau", "admin"}
REGISTRAR = {"bureau", "admin", "field"}
PEOPLE = {"bureau", "admin", "field", "town"}
REGISTRY_READ = READ | {"field"}  # field staff read firms, meters and terminal status

#: (method, path) -> roles allowed (PUBLIC: anyone, no key needed)
MATRIX: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/docs"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/v1/readings"): {"grid"},
    ("GET", "/v1/firms"): REGISTRY_READ,
    ("GET", "/v1/firms/{firm_id}"): REGISTRY_READ,
    ("POST", "/v1/firms"): BUREAU,
    ("PATCH", "/v1/firms/{firm_id}"): BUREAU,
    ("POST", "/v1/firms/import"): BUREAU,
    ("POST", "/v1/firms/output-figures/import"): BUREAU,
    ("GET", "/v1/firms/{firm_id}/output-figures"): READ,
    ("GET", "/v1/firms/{firm_id}/lists"): READ,
    ("POST", "/v1/firms/{firm_id}/lists"): BUREAU,
    ("PATCH", "/v1/firms/{firm_id}/lists/{list_name}/{since}"): BUREAU,
    ("POST", "/v1/firms/lists/import"): BUREAU,
    ("GET", "/v1/firms/{firm_id}/projects"): READ,
    ("POST", "/v1/firms/{firm_id}/projects"): BUREAU,
    ("POST", "/v1/firms/projects/import"): BUREAU,
    ("GET", "/v1/meters"): REGISTRY_READ,
    ("GET", "/v1/meters/{meter_id}"): REGISTRY_READ,
    ("POST", "/v1/meters"): REGISTRAR,
    ("POST", "/v1/meters/{meter_id}/replace"): REGISTRAR,
    ("POST", "/v1/meters/{meter_id}/check"): REGISTRAR,
    ("GET", "/v1/meters/{meter_id}/ratios"): READ,
    ("POST", "/v1/meters/{meter_id}/ratios"): REGISTRAR,
    ("GET", "/v1/towns"): PEOPLE,
    ("GET", "/v1/reference/holidays"): PEOPLE,
    ("POST", "/v1/reference/holidays"): BUREAU,
    ("DELETE", "/v1/reference/holidays/{day}"): BUREAU,
    ("POST", "/v1/reference/holidays/import"): BUREAU,
    ("GET", "/v1/reference/grid-factors"): PEOPLE,
    ("POST", "/v1/reference/grid-factors"): BUREAU,
    ("DELETE", "/v1/reference/grid-factors/{year}/{region}/{kind}"): BUREAU,
    ("POST", "/v1/reference/grid-factors/import"): BUREAU,
    ("GET", "/v1/reference/benchmarks"): PEOPLE,
    ("POST", "/v1/reference/benchmarks"): BUREAU,
    ("DELETE", "/v1/reference/benchmarks/{industry}/{year}/{indicator}"): BUREAU,
    ("POST", "/v1/reference/benchmarks/import"): BUREAU,
    ("GET", "/v1/reference/schemes"): PEOPLE,
    ("GET", "/v1/reference/schemes/{scheme_id}"): PEOPLE,
    ("POST", "/v1/reference/schemes"): BUREAU,
    ("DELETE", "/v1/reference/schemes/{scheme_id}"): BUREAU,
    ("POST", "/v1/reference/schemes/import"): BUREAU,
    ("GET", "/v1/trends/series"): READ,
    ("GET", "/v1/trends/top"): READ,
    ("GET", "/v1/trends/intensity"): READ,
    ("GET", "/v1/trends/production-state"): READ,
    ("GET", "/v1/terminals"): REGISTRY_READ,
    ("GET", "/v1/findings"): READ,
    ("GET", "/v1/notices"): READ,
    ("GET", "/v1/notices/{week}"): READ,
    ("GET", "/v1/notices/{week}/items"): READ,
    ("GET", "/v1/notices/{week}/export"): READ,
    ("POST", "/v1/notices/{week}/generate"): BUREAU,
    ("GET", "/v1/notice-cases/{case_id}"): READ,
    ("POST", "/v1/notice-cases/{case_id}/transitions"): READ,
    ("GET", "/v1/firms/{firm_id}/profile"): READ,
    ("GET", "/v1/evaluations"): READ,
    ("GET", "/v1/carbon-grades"): READ,
    ("POST", "/v1/evaluations/run"): BUREAU,
    ("POST", "/v1/evaluations/official/import"): BUREAU,
    ("GET", "/v1/firms/{firm_id}/evaluations"): READ,
    ("GET", "/v1/campaign"): READ,
}


def _routes(settings: Settings) -> set[tuple[str, str]]:
    """Every documented endpoint, plus the docs page."""
    paths = create_app(settings).openapi()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert ("POST", "/v1/readings") in documented  # the schema really lists the routes
    return documented | {("GET", "/docs")}


def test_every_endpoint_is_in_the_matrix(settings: Settings) -> None:
    missing = _routes(settings) - set(MATRIX)
    assert not missing, f"add these endpoints to the role matrix: {sorted(missing)}"


def _url(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "999999999", path)


@pytest.mark.parametrize(("method", "path"), sorted(MATRIX))
async def test_roles(client: httpx.AsyncClient, keys: Keys, method: str, path: str) -> None:
    allowed = MATRIX[(method, path)]
    body: dict[str, object] = (
        {"json": {}} if method in ("POST", "PATCH") and "import" not in path else {}
    )
    anonymous = await client.request(method, _url(path), **body)  # type: ignore[arg-type]
    if allowed is PUBLIC:
        assert anonymous.status_code not in (401, 403)
        return
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"] == "application/problem+json"
    for role in ROLES:
        response = await client.request(
            method,
            _url(path),
            headers=keys.headers(role),
            **body,  # type: ignore[arg-type]
        )
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["type"] == "/problems/forbidden"
