-- API keys (stored only as hashes) with a role and scope, and the audit trail of writes.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name <> ''),
    -- The public part of the key (shown in listings, used to find the row).
    prefix      text NOT NULL UNIQUE,
    -- sha256 of the whole key; keys are 190-bit random, so a fast hash is enough.
    secret_hash text NOT NULL,
    role        text NOT NULL CHECK (role IN ('grid', 'bureau', 'town', 'field', 'admin')),
    -- The town of a `town` key, the feed of a `grid` key; none for the other roles.
    scope       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    last_used_at timestamptz,
    CHECK ((role IN ('town', 'grid')) = (scope IS NOT NULL))
);

CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    key_id  bigint REFERENCES api_keys (id),
    action  text NOT NULL,
    target  text NOT NULL,
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_key_idx ON audit_log (key_id, at);

-- Which feed's key may push a grid-feed meter's readings: meters.address->>'feed'.
CREATE INDEX meters_feed_idx ON meters ((address ->> 'feed')) WHERE protocol = 'grid-feed';
