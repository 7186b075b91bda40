-- Ingest: quarantine, conflicts, derived 15-minute intervals, their events, and rollups.

-- Readings (or payloads) refused as good data, with the reason and what was received.
CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    meter_id    bigint,
    ts          timestamptz,
    payload     text NOT NULL
);
CREATE INDEX quarantine_reason_idx ON quarantine (reason, received_at);
CREATE INDEX quarantine_meter_idx ON quarantine (meter_id, ts) WHERE meter_id IS NOT NULL;

-- A second reading for the same meter and time with different values: kept out of
-- `readings` (the first one stays) and recorded here for a person to look at.
CREATE TABLE reading_conflicts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    meter_id    bigint NOT NULL,
    ts          timestamptz NOT NULL,
    source      text NOT NULL,
    existing    jsonb NOT NULL,
    incoming    jsonb NOT NULL
);
CREATE INDEX reading_conflicts_meter_idx ON reading_conflicts (meter_id, ts);

-- Time ranges whose intervals must be (re)derived; written in the same transaction as
-- the readings, consumed by the interval worker.
CREATE TABLE interval_dirty (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id bigint NOT NULL,
    ts_min   timestamptz NOT NULL,
    ts_max   timestamptz NOT NULL
);
CREATE INDEX interval_dirty_meter_idx ON interval_dirty (meter_id);

-- Consumption per meter per 15-minute interval (Asia/Shanghai grid), primary side
-- (CT x PT applied), in the meter's unit.
CREATE TABLE intervals (
    meter_id  bigint NOT NULL,
    start     timestamptz NOT NULL,
    energy    double precision NOT NULL,
    sharp     double precision,
    peak      double precision,
    flat      double precision,
    valley    double precision,
    estimated boolean NOT NULL DEFAULT false,
    complete  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (meter_id, start)
);
SELECT create_hypertable('intervals', 'start', chunk_time_interval => interval '7 days',
                         create_default_indexes => false);

-- Gaps, rollovers, resets/replacements and implausible deltas found while deriving.
CREATE TABLE interval_events (
    meter_id bigint NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('gap', 'rollover', 'reset', 'excess')),
    start    timestamptz NOT NULL,
    "end"    timestamptz NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}',
    found_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, kind, start)
);

-- Rollups kept up to date incrementally by the interval worker (the Apache edition of
-- TimescaleDB has no continuous aggregates). Buckets start at Asia/Shanghai boundaries.
CREATE TABLE meter_rollups (
    granularity text NOT NULL CHECK (granularity IN ('hour', 'day', 'month')),
    meter_id    bigint NOT NULL,
    bucket      timestamptz NOT NULL,
    energy      double precision NOT NULL,
    sharp       double precision,
    peak        double precision,
    flat        double precision,
    valley      double precision,
    estimated   double precision NOT NULL DEFAULT 0,
    intervals   integer NOT NULL,
    PRIMARY KEY (granularity, meter_id, bucket)
);

CREATE TABLE firm_rollups (
    granularity text NOT NULL CHECK (granularity IN ('hour', 'day', 'month')),
    firm_id     bigint NOT NULL,
    utility     text NOT NULL,
    bucket      timestamptz NOT NULL,
    energy      double precision NOT NULL,
    sharp       double precision,
    peak        double precision,
    flat        double precision,
    valley      double precision,
    estimated   double precision NOT NULL DEFAULT 0,
    meters      integer NOT NULL,
    PRIMARY KEY (granularity, firm_id, utility, bucket)
);
CREATE INDEX firm_rollups_bucket_idx ON firm_rollups (granularity, bucket);
