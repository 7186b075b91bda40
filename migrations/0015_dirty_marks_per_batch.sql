-- One dirty mark per reading batch instead of one per meter and batch: the batch's meters
-- and each one's time range as parallel arrays. A derivation pass then claims and deletes
-- a few rows where it took tens of thousands (per-row locking and deletion was the largest
-- single cost of a pass under sustained ingest). `interval_dirty_ranges` shows the marks
-- one range per row, as they were before.
ALTER TABLE interval_dirty
    ADD COLUMN meter_ids bigint[],
    ADD COLUMN ts_mins timestamptz[],
    ADD COLUMN ts_maxs timestamptz[];
UPDATE interval_dirty SET meter_ids = ARRAY[meter_id], ts_mins = ARRAY[ts_min],
                          ts_maxs = ARRAY[ts_max];
ALTER TABLE interval_dirty
    DROP COLUMN meter_id,
    DROP COLUMN ts_min,
    DROP COLUMN ts_max,
    ALTER COLUMN meter_ids SET NOT NULL,
    ALTER COLUMN ts_mins SET NOT NULL,
    ALTER COLUMN ts_maxs SET NOT NULL,
    ADD COLUMN ranges integer GENERATED ALWAYS AS (cardinality(meter_ids)) STORED,
    ADD CONSTRAINT interval_dirty_parallel CHECK (
        cardinality(meter_ids) > 0
        AND cardinality(ts_mins) = cardinality(meter_ids)
        AND cardinality(ts_maxs) = cardinality(meter_ids));

CREATE VIEW interval_dirty_ranges AS
SELECT d.id, d.marked_at, u.meter_id, u.ts_min, u.ts_max
FROM interval_dirty d, unnest(d.meter_ids, d.ts_mins, d.ts_maxs) AS u(meter_id, ts_min, ts_max);

-- The meters of ``ids`` (in that order) whose derivation lock (advisory, space ``space``)
-- this transaction gets without waiting, until it has ``wanted`` of them: passes split a
-- mark's meters between them instead of one taking every meter of a batch.
CREATE FUNCTION lock_dirty_meters(space integer, ids bigint[], wanted integer)
RETURNS bigint[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    m bigint;
    got bigint[] := '{}';
BEGIN
    FOREACH m IN ARRAY ids LOOP
        EXIT WHEN cardinality(got) >= wanted;
        IF pg_try_advisory_xact_lock(space, (m % 2147483647)::integer) THEN
            got := got || m;
        END IF;
    END LOOP;
    RETURN got;
END
$$;

-- The ids of the oldest marks no other transaction has locked, locked now, until they hold
-- ``budget`` ranges (at least one mark when any is free). The cursor is read one row at a
-- time, so a pass locks exactly the marks it takes (a FOR loop would prefetch and lock ten,
-- hiding the ones it does not take from other passes until it commits), and a second pass
-- takes the marks after them.
CREATE FUNCTION take_dirty_marks(budget integer) RETURNS bigint[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    free CURSOR FOR
        SELECT id, ranges FROM interval_dirty ORDER BY id FOR UPDATE SKIP LOCKED;
    mark record;
    taken bigint[] := '{}';
    total integer := 0;
BEGIN
    OPEN free;
    LOOP
        FETCH free INTO mark;
        EXIT WHEN NOT FOUND;
        taken := taken || mark.id;
        total := total + mark.ranges;
        EXIT WHEN total >= budget;
    END LOOP;
    CLOSE free;
    RETURN taken;
END
$$;
