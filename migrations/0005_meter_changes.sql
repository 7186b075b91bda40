-- Processes that keep the meter registry in memory (the ingest sinks) LISTEN on this
-- channel: an edit to an existing meter (removal date, ratios, rating) reaches their
-- validation at once instead of at their next periodic reload. New meters need no notice:
-- an unknown meter id is looked up when it first appears.
CREATE FUNCTION notify_meters_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('meterhub_meters_changed', TG_OP);
    RETURN NULL;
END
$$;

CREATE TRIGGER meters_changed
AFTER UPDATE OR DELETE OR TRUNCATE ON meters
FOR EACH STATEMENT EXECUTE FUNCTION notify_meters_changed();
