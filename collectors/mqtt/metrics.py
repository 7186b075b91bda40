"""Prometheus metrics of the MQTT ingest workers (no per-gateway or per-meter labels)."""

from prometheus_client import Counter, Gauge, Histogram

RECEIVED = Counter("meterhub_mqtt_messages_received_total", "Messages delivered by the broker")
ACKED = Counter(
    "meterhub_mqtt_messages_acked_total", "Messages acknowledged to the broker after being durable"
)
STALE = Counter(
    "meterhub_mqtt_messages_stale_total",
    "Durable messages not acknowledged because their connection was lost (redelivered)",
)
UNACKED = Counter(
    "meterhub_mqtt_messages_unacked_total",
    "Messages left unacknowledged on purpose (shutdown, sink closed): the broker redelivers",
)
QUARANTINED_MESSAGES = Counter(
    "meterhub_mqtt_messages_quarantined_total",
    "Whole messages quarantined (not JSON, wrong version, wrong gateway ...), by reason",
    ["reason"],
)
QUARANTINED_ELEMENTS = Counter(
    "meterhub_mqtt_elements_quarantined_total",
    "Single reading elements quarantined while parsing, by reason",
    ["reason"],
)
SUBMIT_FAILURES = Counter(
    "meterhub_mqtt_submit_failures_total",
    "Failed hand-overs to the ingest sink: retried (database away, spool full) or, for other "
    "errors, retried alone and then quarantined as submit_failed",
)
READINGS_PER_MESSAGE = Histogram(
    "meterhub_mqtt_message_readings",
    "Reading elements per message",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000),
)
ACK_SECONDS = Histogram(
    "meterhub_mqtt_ack_latency_seconds",
    "Time from a message's arrival to its acknowledgement (parse, commit, ack order)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INFLIGHT = Gauge("meterhub_mqtt_inflight_messages", "Messages received and not yet settled")
CONNECTED = Gauge("meterhub_mqtt_connected_clients", "Ingest clients connected to the broker")
CONNECTS = Counter("meterhub_mqtt_connects_total", "Successful (re)connections to the broker")
SUBSCRIBES = Counter(
    "meterhub_mqtt_subscribes_total", "Subscriptions granted (renewed on every connection)"
)
