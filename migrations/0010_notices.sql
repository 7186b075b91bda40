-- Weekly rectification notices (每周通报): cases that live across weeks, their history
-- (never edited), and the issued notices with their revisions.

-- A case: one firm's problem of one type, from its first notice until it is resolved; a
-- relapse within the window reopens the same case (回头看).
CREATE TABLE notice_cases (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    firm_id        bigint NOT NULL REFERENCES firms (id),
    problem        text NOT NULL CHECK (problem IN (
                       'd_two_years', 'unrectified_d', 'd_class', 'high_energy', 'land_reclaim',
                       'two_high', 'energy_anomaly', 'suspected_stoppage',
                       'data_interruption')),
    -- The town responsible when the case opened (a firm that moves keeps its cases).
    town           text NOT NULL,
    status         text NOT NULL DEFAULT 'issued' CHECK (status IN (
                       'issued', 'acknowledged', 'rectifying', 'resolved', 'escalated')),
    first_week     date NOT NULL CHECK (extract(isodow FROM first_week) = 1),
    last_week      date NOT NULL CHECK (last_week >= first_week),
    -- The week the current episode began (its first notice, or its reopening).
    episode_week   date NOT NULL,
    deadline       date NOT NULL,
    reopened       integer NOT NULL DEFAULT 0,
    resolved_week  date,
    resolved_basis text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'resolved') = (resolved_week IS NOT NULL))
);
CREATE UNIQUE INDEX notice_cases_one_live_idx ON notice_cases (firm_id, problem)
    WHERE status <> 'resolved';
CREATE INDEX notice_cases_town_idx ON notice_cases (town, status);

-- Every change of a case: who, when, from and to which status, the note and the evidence.
-- Rows are never updated or deleted (a trigger refuses it).
CREATE TABLE case_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES notice_cases (id),
    at          timestamptz NOT NULL DEFAULT now(),
    week        date,
    action      text NOT NULL CHECK (action IN (
                    'issue', 'carry', 'reopen', 'acknowledge', 'feedback', 'resolve',
                    'escalate')),
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,  -- 'system' or the key's role and name
    key_id      bigint REFERENCES api_keys (id),
    note        text,
    evidence    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX case_events_case_idx ON case_events (case_id, id);
-- The generator records each week's issue/carry/reopen once.
CREATE UNIQUE INDEX case_events_weekly_idx ON case_events (case_id, week, action)
    WHERE action IN ('issue', 'carry', 'reopen');

CREATE FUNCTION case_events_are_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is history: rows are never updated or deleted'
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER case_events_history BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_events_are_history();

-- An issued notice of one week; a changed regeneration is a new revision, never an edit.
CREATE TABLE notices (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    week       date NOT NULL CHECK (extract(isodow FROM week) = 1),
    revision   integer NOT NULL CHECK (revision >= 1),
    number     text NOT NULL,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    digest     text NOT NULL,  -- sha256 of the canonical content
    content    jsonb NOT NULL,
    changes    jsonb NOT NULL DEFAULT '[]',  -- what differs from the previous revision
    UNIQUE (week, revision)
);
