-- Collector state: each terminal's health, and the events when it changes.
CREATE TABLE terminal_status (
    meter_id             bigint PRIMARY KEY REFERENCES meters (id),
    online               boolean NOT NULL,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_success_at      timestamptz,
    last_attempt_at      timestamptz NOT NULL,
    last_error           text,
    clock_drift_s        double precision,
    clock_checked_at     timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE terminal_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meter_id bigint NOT NULL REFERENCES meters (id),
    at       timestamptz NOT NULL DEFAULT now(),
    kind     text NOT NULL CHECK (kind IN ('online', 'offline', 'clock_drift', 'clock_ok')),
    detail   jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX terminal_events_meter_idx ON terminal_events (meter_id, at);

-- Collector processes report here so that /readyz can tell whether collection runs.
CREATE TABLE collector_heartbeats (
    name        text PRIMARY KEY,
    started_at  timestamptz NOT NULL,
    beat_at     timestamptz NOT NULL,
    meters      integer NOT NULL,
    last_cycle  jsonb NOT NULL DEFAULT '{}'
);
