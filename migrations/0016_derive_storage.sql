-- Storage for what a derivation pass writes and reads most.

-- A mark's arrays are read whole by the pass that takes it and written once: kept
-- uncompressed, neither the writer compresses nor the pass decompresses them (new marks; the
-- ones already written keep their storage).
ALTER TABLE interval_dirty
    ALTER COLUMN meter_ids SET STORAGE EXTERNAL,
    ALTER COLUMN ts_mins SET STORAGE EXTERNAL,
    ALTER COLUMN ts_maxs SET STORAGE EXTERNAL;

-- The rollup keys begin with the granularity ('hour', 'day', 'month'): compared byte by
-- byte instead of through the locale's collation, every key comparison of a pass's
-- insertions, deletions and joins is cheaper (a quarter of the hourly rows' insertion cost,
-- measured). The order of the three names is the same in both.
ALTER TABLE meter_rollups ALTER COLUMN granularity TYPE text COLLATE "C";
ALTER TABLE firm_rollups ALTER COLUMN granularity TYPE text COLLATE "C";
ALTER TABLE town_rollups ALTER COLUMN granularity TYPE text COLLATE "C";
