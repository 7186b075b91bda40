-- History that keeps past energy where it was: CT/PT ratio periods per meter, the town each
-- firm belonged to over time, and the interval event that says a meter swap lost energy.

-- A swap whose final or initial register reading is unknown: the energy between the old
-- meter's last reading and the new meter's first is lost, and this event says so.
ALTER TABLE interval_events DROP CONSTRAINT interval_events_kind_check;
ALTER TABLE interval_events ADD CONSTRAINT interval_events_kind_check
    CHECK (kind IN ('gap', 'rollover', 'reset', 'excess', 'unknown_swap_energy'));

-- CT and PT ratios by the time they hold from. An interval is derived with the ratio valid
-- at its start; before a meter's first period its first ratio applies. meters.ct_ratio and
-- meters.pt_ratio are the latest period's.
CREATE TABLE meter_ratios (
    meter_id   bigint NOT NULL REFERENCES meters (id) ON DELETE CASCADE,
    valid_from timestamptz NOT NULL CHECK (isfinite(valid_from)),
    ct_ratio   numeric NOT NULL CHECK (ct_ratio > 0),
    pt_ratio   numeric NOT NULL CHECK (pt_ratio > 0),
    multiplier numeric GENERATED ALWAYS AS (ct_ratio * pt_ratio) STORED,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, valid_from)
);

INSERT INTO meter_ratios (meter_id, valid_from, ct_ratio, pt_ratio)
SELECT id, installed_at, ct_ratio, pt_ratio FROM meters;

-- A new meter's first period; a ratio edited on the meter itself (not through a period, as
-- the registry's upsert does) starts a period now.
CREATE FUNCTION meter_ratio_period() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO meter_ratios (meter_id, valid_from, ct_ratio, pt_ratio)
        VALUES (NEW.id, NEW.installed_at, NEW.ct_ratio, NEW.pt_ratio);
    ELSIF ROW(NEW.ct_ratio, NEW.pt_ratio) IS DISTINCT FROM (
        SELECT ROW(r.ct_ratio, r.pt_ratio) FROM meter_ratios r
        WHERE r.meter_id = NEW.id ORDER BY r.valid_from DESC LIMIT 1
    ) THEN
        INSERT INTO meter_ratios (meter_id, valid_from, ct_ratio, pt_ratio)
        VALUES (NEW.id, greatest(now(), NEW.installed_at), NEW.ct_ratio, NEW.pt_ratio)
        ON CONFLICT (meter_id, valid_from) DO UPDATE
        SET ct_ratio = EXCLUDED.ct_ratio, pt_ratio = EXCLUDED.pt_ratio, recorded_at = now();
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER meters_ratio_period
AFTER INSERT OR UPDATE OF ct_ratio, pt_ratio ON meters
FOR EACH ROW EXECUTE FUNCTION meter_ratio_period();

-- The town a firm belonged to over [valid_from, valid_to): a move closes the current period
-- and opens one from the time of the move, so past weeks stay with the town they were in.
CREATE TABLE firm_towns (
    firm_id    bigint NOT NULL REFERENCES firms (id) ON DELETE CASCADE,
    valid_from timestamptz NOT NULL,
    valid_to   timestamptz NOT NULL DEFAULT 'infinity',
    town       text NOT NULL REFERENCES towns (name) ON UPDATE CASCADE,
    PRIMARY KEY (firm_id, valid_from),
    CHECK (valid_to > valid_from)
);
CREATE INDEX firm_towns_town_idx ON firm_towns (town, valid_from);

INSERT INTO firm_towns (firm_id, valid_from, town)
SELECT id, '-infinity', town FROM firms;

CREATE FUNCTION firm_town_period() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO firm_towns (firm_id, valid_from, town) VALUES (NEW.id, '-infinity', NEW.town);
    ELSIF NEW.town IS DISTINCT FROM OLD.town
          AND EXISTS (SELECT 1 FROM towns WHERE name = OLD.town) THEN
        -- (A town renamed in the towns table cascades here and into firm_towns: no move.)
        -- Moved twice in one transaction: the period opened by the first move is renamed.
        UPDATE firm_towns SET town = NEW.town
        WHERE firm_id = NEW.id AND valid_to = 'infinity' AND valid_from = now();
        IF NOT FOUND THEN
            UPDATE firm_towns SET valid_to = now()
            WHERE firm_id = NEW.id AND valid_to = 'infinity';
            INSERT INTO firm_towns (firm_id, valid_from, town) VALUES (NEW.id, now(), NEW.town);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER firms_town_period
AFTER INSERT OR UPDATE OF town ON firms
FOR EACH ROW EXECUTE FUNCTION firm_town_period();
