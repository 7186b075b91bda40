from __future__ import annotations

import pytest

from collectors.mqtt.topics import gateway_of, readings_topic, shared_filter


def test_readings_topic() -> None:
    assert readings_topic("gw-0001") == "meterhub/v1/gw-0001/readings"


@pytest.mark.parametrize("bad", ["", "gw/1", "gw+", "gw#", "网关", "x" * 65])
def test_gateway_ids_are_plain_topic_levels(bad: str) -> None:
    with pytest.raises(ValueError, match="gateway id"):
        readings_topic(bad)


def test_shared_filter() -> None:
    assert shared_filter("ingest") == "$share/ingest/meterhub/v1/+/readings"
    assert shared_filter("t1", "gw-7") == "$share/t1/meterhub/v1/gw-7/readings"


@pytest.mark.parametrize(("group", "gateways"), [("", "+"), ("a/b", "+"), ("a+", "+"), ("g", "#")])
def test_shared_filter_refuses_wildcards_in_names(group: str, gateways: str) -> None:
    with pytest.raises(ValueError):
        shared_filter(group, gateways)


@pytest.mark.parametrize(
    ("topic", "gateway"),
    [
        ("meterhub/v1/gw-0001/readings", "gw-0001"),
        ("meterhub/v1/gw-0001/ack", None),
        ("meterhub/v1/gw-0001/readings/extra", None),
        ("meterhub/v2/gw-0001/readings", None),
        ("x/meterhub/v1/gw-0001/readings", None),
        ("meterhub/v1//readings", None),
        ("meterhub/v1/readings", None),
    ],
)
def test_gateway_of(topic: str, gateway: str | None) -> None:
    assert gateway_of(topic) == gateway
