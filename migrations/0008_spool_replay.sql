-- Replay progress of spool segments (see ingest/spool.py and ingest/sink.py). A replayed
-- record's readings, quarantine and conflict rows commit in the same transaction as its
-- row here, so a replay interrupted half way resumes with the records not yet committed
-- and inserts nothing twice. `segment` is the id in the segment's header, `record_end` the
-- byte offset just past the record. A segment's rows are deleted once it is replayed and
-- removed; they are kept while it is set aside in spool/corrupt/, so that a segment put
-- back after a repair replays only the records that were not replayed.
CREATE TABLE spool_replay (
    segment     text NOT NULL,
    record_end  bigint NOT NULL,
    replayed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment, record_end)
);
