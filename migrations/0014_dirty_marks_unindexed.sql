-- Dirty marks are claimed in id order and deleted by id: nothing looks them up by meter, and
-- the meter index cost every reading batch an index insert per meter and every pass its
-- deletions.
DROP INDEX IF EXISTS interval_dirty_meter_idx;
