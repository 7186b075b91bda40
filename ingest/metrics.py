"""Prometheus metrics of the ingest path (no per-meter labels: fleets are large)."""

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter(
    "meterhub_ingest_readings_total",
    "Readings handled by the ingest path, by outcome",
    ["outcome"],
)
COPIED = Counter(
    "meterhub_ingest_copied_readings_total",
    "Readings sent to the database by path: fast (COPY straight into readings: newer than "
    "anything this process committed for the meter) or merge (staging + ON CONFLICT)",
    ["path"],
)
QUARANTINED = Counter(
    "meterhub_ingest_quarantined_total", "Readings or payloads quarantined, by reason", ["reason"]
)
BATCH_SIZE = Histogram(
    "meterhub_ingest_batch_readings",
    "Readings per database batch",
    buckets=(10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000),
)
FLUSH_SECONDS = Histogram(
    "meterhub_ingest_flush_seconds",
    "Time to write one batch (validate, COPY, merge, commit)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("meterhub_ingest_queue_readings", "Readings waiting to be written")
SPOOL_BYTES = Gauge("meterhub_spool_bytes", "Bytes in the on-disk spool")
SPOOL_OLDEST_AGE = Gauge(
    "meterhub_spool_oldest_age_seconds", "Age of the oldest spooled reading (0 when empty)"
)
SPOOLED_BATCHES = Counter("meterhub_spool_appended_batches_total", "Batches written to the spool")
REPLAYED_BATCHES = Counter(
    "meterhub_spool_replayed_batches_total", "Spooled batches replayed into the database"
)
REPLAY_PENDING_SEGMENTS = Gauge(
    "meterhub_spool_replay_pending_segments", "Spool segments still to replay"
)
TORN_RECORDS = Counter(
    "meterhub_spool_torn_records_total",
    "Torn last spool records (an append that never returned, so never acknowledged) dropped",
)
CORRUPT_RECORDS = Counter(
    "meterhub_spool_corrupt_records_total",
    "Damaged spool records found on replay (their segment is set aside in spool/corrupt/)",
)
CORRUPT_SEGMENTS_TOTAL = Counter(
    "meterhub_spool_corrupt_segments_total",
    "Spool segments with a damaged record set aside in spool/corrupt/ after replaying the rest",
)
CORRUPT_SEGMENTS = Gauge(
    "meterhub_spool_set_aside_segments", "Segments in spool/corrupt/ now, waiting for an operator"
)
REPLAY_SKIPPED_RECORDS = Counter(
    "meterhub_spool_replay_skipped_records_total",
    "Spool records not replayed again because an earlier, interrupted replay committed them",
)
DATABASE_UP = Gauge("meterhub_ingest_database_up", "1 while the writers reach the database")
DIRTY_RANGES = Gauge(
    "meterhub_intervals_dirty_ranges", "Dirty reading ranges waiting for interval derivation"
)
DIRTY_OLDEST_AGE = Gauge(
    "meterhub_intervals_dirty_oldest_age_seconds",
    "Age of the oldest dirty range waiting for derivation (0 when none)",
)
QUERYABLE_SECONDS = Histogram(
    "meterhub_intervals_queryable_latency_seconds",
    "From a reading batch's commit (its dirty mark) to its intervals and rollups being visible",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300, 1800),
)
