-- A mark's arrays are read whole by the pass that takes it and written once: kept
-- uncompressed, neither the writer compresses nor the pass decompresses them (new marks; the
-- ones already written keep their storage).
ALTER TABLE interval_dirty
    ALTER COLUMN meter_ids SET STORAGE EXTERNAL,
    ALTER COLUMN ts_mins SET STORAGE EXTERNAL,
    ALTER COLUMN ts_maxs SET STORAGE EXTERNAL;
