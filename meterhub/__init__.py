"""meterhub's shared vocabulary: the `Reading` type, settings, errors, the database pool.

Every other package (collectors, ingest, api, alerts, simulators) imports from here;
this package imports from none of them.
"""

__version__ = "0.1.0"
