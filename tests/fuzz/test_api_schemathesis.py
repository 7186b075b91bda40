"""schemathesis over the served OpenAPI document, with every role's key: no server error,
and every answer (status, content type, headers, body) as documented. Then the API's log
is searched for each key used: none may be there.

Bounded in `make test` (`QUICK_EXAMPLES` per operation); `make test-all` runs the slow
variant with `SOAK_EXAMPLES`."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import checks
from schemathesis.core.result import Ok

from tests.fuzz.conftest import ROLES, LiveApi

pytestmark = pytest.mark.integration

QUICK_EXAMPLES = 25
SOAK_EXAMPLES = 400

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _fuzz(live: LiveApi, *, examples: int, derandomize: bool) -> dict[str, int]:
    """Run every operation ``examples`` times, each with a key of a drawn role; the
    failures (operation, reproduction, error) are raised together at the end."""
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    session = requests.Session()
    failures: list[str] = []
    calls: dict[str, int] = {}
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) > 50  # the whole API, not a part of it

    for operation in operations:

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=derandomize,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), role=st.sampled_from(ROLES))
        def run(case: Any, role: str) -> None:
            headers = {"X-API-Key": live.keys[role]}
            response = case.call(session=session, headers=headers, timeout=30)
            calls[role] = calls.get(role, 0) + 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup
                curl = case.as_curl_command(headers={"X-API-Key": f"<{role} key>"})
                failures.append(f"{case.operation.label} as {role}: {curl}\n{exc}")
                raise

        try:
            run()
        except (Exception, BaseExceptionGroup):  # recorded above; go on with the others
            continue
    assert not failures, "\n\n".join(failures)
    return calls


def _no_key_in_log(live: LiveApi) -> None:
    log = live.log_text()
    assert log, "the API wrote no log at all"
    for role, key in live.keys.items():
        assert key not in log, f"the {role} key is in the API log"
        assert key.split("_")[-1] not in log, f"the {role} key's secret is in the API log"


def test_every_operation_as_documented_with_every_role(live_api: LiveApi) -> None:
    calls = _fuzz(live_api, examples=QUICK_EXAMPLES, derandomize=True)  # the same each run
    assert set(calls) == set(ROLES)
    _no_key_in_log(live_api)


@pytest.mark.slow
def test_every_operation_as_documented_long_run(live_api: LiveApi) -> None:
    calls = _fuzz(live_api, examples=SOAK_EXAMPLES, derandomize=False)
    assert set(calls) == set(ROLES)
    _no_key_in_log(live_api)
