-- Town rollups: per town, utility and local day or month, the sum of the firm rollups of
-- the firms that belonged to the town at the bucket's start (`firm_towns`). The city by
-- town, a town's and the city's series read 14 rows a day from here instead of one per
-- firm, with the same attribution by period (a week: each of its days at its start).
-- `refresh_town_rollups` re-sums buckets; the interval worker's pass calls it for the
-- buckets whose firm rollups it replaced (ingest/town_rollups.py), and the triggers below
-- when a firm's town periods change (a move).
CREATE TABLE town_rollups (
    granularity text NOT NULL CHECK (granularity IN ('day', 'month')),
    utility     text NOT NULL,
    town        text NOT NULL REFERENCES towns (name) ON UPDATE CASCADE,
    bucket      timestamptz NOT NULL,
    energy      double precision NOT NULL,
    sharp       double precision,
    peak        double precision,
    flat        double precision,
    valley      double precision,
    estimated   double precision NOT NULL DEFAULT 0,
    firms       integer NOT NULL,
    PRIMARY KEY (granularity, utility, town, bucket)
);

-- The per-firm locks of the rollup refresh (advisory space 'mhfr'), taken in firm order
-- and held to commit: whoever changes a firm's rollups or its towns holds its lock.
CREATE FUNCTION lock_firm_rollups(firm_ids bigint[]) RETURNS bigint
LANGUAGE sql AS $$
    SELECT count(pg_advisory_xact_lock(x'6d686672'::int, (f.id % 2147483647)::int))
    FROM (SELECT DISTINCT u.id FROM unnest(firm_ids) AS u(id) WHERE u.id IS NOT NULL
          ORDER BY 1) AS f
$$;

-- Re-sum the town buckets in [lo, hi) of each (granularity, town, utility) given (ranges of
-- one key are merged). Town locks (space 'mhtr', in town order, held to commit) come first
-- and every statement after them sees what committed before: two passes over different
-- firms of one town cannot each miss the other's rollups. Callers take the locks of the
-- firms whose rollups or towns they changed before (`lock_firm_rollups`), never after.
CREATE FUNCTION refresh_town_rollups(
    granularities text[], towns text[], utilities text[], los timestamptz[], his timestamptz[]
) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(pg_advisory_xact_lock(x'6d687472'::int, hashtext(t.town)))
    FROM (SELECT DISTINCT u.town FROM unnest(towns) AS u(town) ORDER BY 1) AS t;
    DELETE FROM town_rollups t
    USING (SELECT g, town, utility, min(lo) AS lo, max(hi) AS hi
           FROM unnest(granularities, towns, utilities, los, his) AS u(g, town, utility, lo, hi)
           GROUP BY 1, 2, 3) AS r
    WHERE t.granularity = r.g AND t.utility = r.utility AND t.town = r.town
      AND t.bucket >= r.lo AND t.bucket < r.hi;
    INSERT INTO town_rollups
        (granularity, utility, town, bucket, energy, sharp, peak, flat, valley, estimated, firms)
    SELECT r.g, r.utility, r.town, f.bucket, sum(f.energy), sum(f.sharp), sum(f.peak),
           sum(f.flat), sum(f.valley), sum(f.estimated), count(*)
    FROM (SELECT g, town, utility, min(lo) AS lo, max(hi) AS hi
          FROM unnest(granularities, towns, utilities, los, his) AS u(g, town, utility, lo, hi)
          GROUP BY 1, 2, 3) AS r
    JOIN firm_towns ft ON ft.town = r.town AND ft.valid_from < r.hi AND ft.valid_to > r.lo
    JOIN firm_rollups f ON f.granularity = r.g AND f.firm_id = ft.firm_id
                       AND f.utility = r.utility
                       AND f.bucket >= greatest(r.lo, ft.valid_from)
                       AND f.bucket < least(r.hi, ft.valid_to)
    GROUP BY r.g, r.utility, r.town, f.bucket;
END
$$;

-- A change of a firm's town periods re-sums the buckets whose town it changes, where the
-- firm has rollups: a move closes the old period (its town loses the firm from the move on)
-- and opens the new one; a new firm has no rollups yet (nothing to re-sum). A town renamed
-- in the towns table cascades into town_rollups itself (the old name is gone: no re-sum).
CREATE FUNCTION firm_towns_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed_firms bigint[];
    changed_towns text[];
    changed_from timestamptz[];
    changed_to timestamptz[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(firm_id), array_agg(town), array_agg(valid_from), array_agg(valid_to)
        INTO changed_firms, changed_towns, changed_from, changed_to FROM new_periods;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(firm_id), array_agg(town), array_agg(valid_from), array_agg(valid_to)
        INTO changed_firms, changed_towns, changed_from, changed_to FROM old_periods;
    ELSE
        SELECT array_agg(c.firm_id), array_agg(c.town), array_agg(c.lo), array_agg(c.hi)
        INTO changed_firms, changed_towns, changed_from, changed_to
        FROM (
            -- A period that ends earlier or later in the same town: the time in between.
            SELECT o.firm_id, o.town, least(o.valid_to, n.valid_to) AS lo,
                   greatest(o.valid_to, n.valid_to) AS hi
            FROM old_periods o JOIN new_periods n USING (firm_id, valid_from)
            WHERE o.town = n.town AND o.valid_to <> n.valid_to
            UNION ALL
            -- Any other change: the old period and the new one, whole.
            SELECT o.firm_id, o.town, o.valid_from, o.valid_to FROM old_periods o
            WHERE NOT EXISTS (SELECT 1 FROM new_periods n
                              WHERE n.firm_id = o.firm_id AND n.valid_from = o.valid_from
                                AND (n.town = o.town OR (n.valid_to = o.valid_to
                                     AND NOT EXISTS (SELECT 1 FROM towns WHERE name = o.town))))
            UNION ALL
            SELECT n.firm_id, n.town, n.valid_from, n.valid_to FROM new_periods n
            WHERE NOT EXISTS (SELECT 1 FROM old_periods o
                              WHERE n.firm_id = o.firm_id AND n.valid_from = o.valid_from
                                AND (n.town = o.town OR (n.valid_to = o.valid_to
                                     AND NOT EXISTS (SELECT 1 FROM towns WHERE name = o.town))))
        ) AS c;
    END IF;
    IF changed_firms IS NULL THEN
        RETURN NULL;
    END IF;
    -- Locked first: the firms' rollups are read (for their extent) only once no pass can
    -- be changing them.
    PERFORM lock_firm_rollups(changed_firms);
    PERFORM refresh_town_rollups(array_agg(k.g), array_agg(c.town), array_agg(k.u),
                                 array_agg(greatest(c.lo, e.first)),
                                 array_agg(least(c.hi, e.last + interval '1 microsecond')))
    FROM unnest(changed_firms, changed_towns, changed_from, changed_to) AS c(firm_id, town, lo, hi),
         (SELECT g, u FROM unnest(ARRAY['day', 'month']) AS g,
                           unnest(ARRAY['electricity', 'water', 'gas']) AS u) AS k,
         LATERAL (SELECT min(f.bucket) AS first, max(f.bucket) AS last FROM firm_rollups f
                  WHERE f.granularity = k.g AND f.firm_id = c.firm_id AND f.utility = k.u
                    AND f.bucket >= c.lo AND f.bucket < c.hi) AS e
    WHERE e.first IS NOT NULL;
    RETURN NULL;
END
$$;

CREATE TRIGGER firm_towns_inserted AFTER INSERT ON firm_towns
REFERENCING NEW TABLE AS new_periods
FOR EACH STATEMENT EXECUTE FUNCTION firm_towns_changed();
CREATE TRIGGER firm_towns_updated AFTER UPDATE ON firm_towns
REFERENCING OLD TABLE AS old_periods NEW TABLE AS new_periods
FOR EACH STATEMENT EXECUTE FUNCTION firm_towns_changed();
CREATE TRIGGER firm_towns_deleted AFTER DELETE ON firm_towns
REFERENCING OLD TABLE AS old_periods
FOR EACH STATEMENT EXECUTE FUNCTION firm_towns_changed();

-- The towns' days and months of the firm rollups already stored.
SELECT refresh_town_rollups(array_agg(k.granularity), array_agg(t.name), array_agg(k.utility),
                            array_agg('-infinity'::timestamptz), array_agg('infinity'::timestamptz))
FROM (SELECT DISTINCT granularity, utility FROM firm_rollups WHERE granularity <> 'hour') AS k,
     towns t;
