"""The ingest path: every producer's readings into TimescaleDB, idempotent and lossless.

Producers use one API::

    async with IngestSink(settings) as sink:
        result = await sink.submit(readings)

`submit` returns once the readings are committed in the database or fsynced to the spool.
"""
