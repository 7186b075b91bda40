"""The simulators' error tree: everything they raise on purpose derives from `SimulatorError`."""

from meterhub.errors import MeterhubError


class SimulatorError(MeterhubError):
    code = "simulator_error"


class CityConfigError(SimulatorError):
    """A city file (or a `CityConfig` built in code) breaks the schema or a uniqueness rule."""

    code = "simulator_config"


class TariffTableError(SimulatorError):
    """A time-of-use table does not cover each month's 24 hours exactly once."""

    code = "tariff_table"


class NaiveTimeError(SimulatorError, ValueError):
    """A timestamp without a time zone was passed where an aware one is required."""

    code = "naive_time"


class NotInstalledError(SimulatorError):
    """A simulated meter was asked about a time before it was installed."""

    code = "not_installed"
