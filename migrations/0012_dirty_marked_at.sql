-- When each dirty range was marked (the writer's transaction time, i.e. just before its
-- readings were committed): the backlog's oldest age and the committed -> queryable
-- latency are measured from it.
ALTER TABLE interval_dirty ADD COLUMN marked_at timestamptz NOT NULL DEFAULT now();
