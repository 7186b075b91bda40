-- Replay progress of spool segments (see ingest/spool.py and ingest/sink.py). A replayed
-- record's readings, quarantine and conflict rows commit in the same transaction as its
-- segment's row here, so a replay interrupted half way resumes after the last committed
-- record and inserts nothing twice. `segment` is the id in the segment's header; a row is
-- deleted once its segment is replayed and removed (kept while the segment is set aside
-- in spool/corrupt/, so that putting it back replays only what was not replayed).
CREATE TABLE spool_replay (
    segment     text PRIMARY KEY,
    done_offset bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
