"""The log redaction safety net: every known secret shape is masked, nothing else is."""

from __future__ import annotations

import secrets

import pytest

from meterhub.redact import MASK, bounded, redact_text, redact_value


def _key() -> str:
    return f"mh_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


KEY = _key()
PASSWORD = secrets.token_hex(12)


@pytest.mark.parametrize(
    "template",
    [
        "X-API-Key: {key}",
        "x-api-key={key}",
        "{{'x-api-key': '{key}', 'host': '127.0.0.1'}}",
        "[(b'host', b'127.0.0.1:8000'), (b'x-api-key', b'{key}')]",
        "key = '{key}'",
        "the API key {key} is unknown",
        'request headers {{"X-API-Key": "{key}"}}',
    ],
)
def test_api_keys_are_masked_in_any_rendering(template: str) -> None:
    text = redact_text(template.format(key=KEY))
    assert KEY not in text
    assert KEY.split("_", 2)[2] not in text  # not even the secret part alone
    assert MASK in text


def test_a_bare_key_keeps_its_lookup_prefix() -> None:
    prefix = KEY.split("_")[1]
    assert redact_text(f"key {KEY} revoked") == f"key mh_{prefix}_{MASK} revoked"


def test_any_x_api_key_value_is_masked_even_if_not_our_shape() -> None:
    assert redact_text("X-API-Key: hunter2-not-a-key") == f"X-API-Key: {MASK}"


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://meterhub:{pw}@127.0.0.1:55432/meterhub",
        "postgres://u:{pw}@127.0.0.1/db?sslmode=disable",
        "mqtt://ingest:{pw}@127.0.0.1:18830",
        "mqtts://gw-1:{pw}@127.0.0.1:8883",
        "host=127.0.0.1 user=meterhub password={pw} dbname=meterhub",
        '{{"password": "{pw}"}}',
        "PGPASSWORD={pw} psql",
        "client_secret: {pw}",
    ],
)
def test_passwords_in_urls_and_pairs_are_masked(template: str) -> None:
    text = redact_text(template.format(pw=PASSWORD))
    assert PASSWORD not in text
    assert MASK in text


@pytest.mark.parametrize(
    "text",
    [
        "password authentication failed for user meterhub",
        "http://127.0.0.1:8000/v1/readings?limit=10",
        "tcp://127.0.0.1:8899",
        "meter 330782-0001 at 2026-03-02T08:15:00+08:00",
        "secret_hash mismatch",
    ],
)
def test_text_without_secrets_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redacting_twice_changes_nothing() -> None:
    text = (
        f"X-API-Key: {KEY} (b'x-api-key', b'{KEY}') {KEY} password={PASSWORD} "
        f"postgresql://u:{PASSWORD}@127.0.0.1/db"
    )
    once = redact_text(text)
    assert redact_text(once) == once


def test_values_are_walked_and_bounded() -> None:
    class Holder:
        def __repr__(self) -> str:
            return f"Holder(dsn='postgresql://u:{PASSWORD}@127.0.0.1/db')"

    value = {"headers": [("x-api-key", KEY)], "n": 3, "ok": True, "none": None, "obj": Holder()}
    safe = redact_value(value)
    assert safe["n"] == 3 and safe["ok"] is True and safe["none"] is None
    assert KEY not in str(safe) and PASSWORD not in str(safe)
    huge = redact_value("x" * 100_000 + " tail", limit=1_000)
    assert len(huge) < 1_100
    assert huge.endswith(" tail")  # the end of a traceback is the useful part


def test_bounded_keeps_head_and_tail() -> None:
    text = "HEAD" + "-" * 10_000 + "TAIL"
    cut = bounded(text, 400)
    assert cut.startswith("HEAD") and cut.endswith("TAIL")
    assert "characters cut" in cut
    assert bounded("short", 400) == "short"


def test_a_key_at_the_edge_of_a_cut_is_still_masked() -> None:
    for before in range(80, 110):  # the head keeps 100 characters of a 400 limit
        cut = bounded("x" * before + KEY + "y" * 100_000, 400)
        assert KEY.split("_", 2)[2][:6] not in cut, before
    for after in range(280, 320):  # the tail keeps 300
        cut = bounded("y" * 100_000 + KEY + "x" * after, 400)
        assert KEY.split("_", 2)[2][-6:] not in cut, after


def test_long_containers_are_cut() -> None:
    safe = redact_value({"items": list(range(10_000)), "map": {str(i): i for i in range(500)}})
    assert len(safe["items"]) == 101 and safe["items"][-1] == "... 9900 more"
    assert len(safe["map"]) == 101
