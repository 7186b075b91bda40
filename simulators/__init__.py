"""Simulated meters, gateways and a whole simulated city, for demos and tests.

The core is pure (no I/O): `config` (a city as data; `city_file` reads/writes it as TOML,
`city.generate_city` makes a realistic one), `profile` (load as a function of time),
`tariff` (time-of-use table), `registers` and `meter` (`SimulatedMeter`: registers that
integrate the load exactly, snapshots), `faults` (what protocol simulators misbehave with).
Protocol simulators build on it; ingest, api and alerts never import this package.
"""
