"""A city's Modbus gateway as a `ModbusMeterSimulator`: its unit ids, models, values, faults.

Each meter answers with its model's register map (``model`` in the city file names a file
of ``collectors/modbus/models``), filled from the simulator core at the moment the request
arrives. Faults map onto what a Modbus TCP gateway with RS-485 meters behind it does:

* ``no_answer``, or not yet installed: silence (the collector's request times out);
* ``late_answer``: the answer after ``delay`` seconds;
* ``corrupt_checksum``: exception 11, "gateway target device failed to respond" (the
  gateway dropped the meter's RS-485 frame with its bad CRC);
* ``garbage_values``: one absurd value (NaN, 1e12, a negative); a value the register type
  cannot hold makes the meter answer exception 4, device failure;
* ``gateway_offline``: connections are dropped.
"""

from __future__ import annotations

from functools import lru_cache

from collectors.modbus import MeterModel, RegisterMapError, load_model
from simulators.config import ModbusAddress
from simulators.errors import CityConfigError
from simulators.fleet import CityFleet, Clock, installed, misbehaviour, wall_clock
from simulators.line_speed import modbus_rtu
from simulators.meter import SimulatedMeter
from simulators.modbus_server import Fault, ModbusMeterSimulator

#: Modbus exception code of a gateway whose target device did not answer.
GATEWAY_TARGET_FAILED = 11


@lru_cache(maxsize=64)
def _model(name: str) -> MeterModel:
    return load_model(name)


def _units(fleet: CityFleet, gateway_id: str) -> dict[int, SimulatedMeter]:
    units: dict[int, SimulatedMeter] = {}
    for meter in fleet.on(gateway_id):
        address = meter.spec.address
        assert isinstance(address, ModbusAddress)  # the city checked it
        units[address.unit_id] = meter
    return units


def modbus_gateway(
    fleet: CityFleet,
    gateway_id: str,
    *,
    clock: Clock = wall_clock,
    host: str | None = None,
    baud: int = 0,
) -> ModbusMeterSimulator:
    """The simulator of Modbus gateway ``gateway_id``, listening on its city port (not yet
    started); ``host`` overrides the city's listening address (e.g. ``0.0.0.0``). ``baud``
    > 0 puts its meters on an RS-485 bus at that line speed (`simulators.line_speed.modbus_rtu`).

    Raises `CityConfigError` when a meter names a model without a register map.

    Example::

        async with modbus_gateway(fleet, "mb-001") as gateway:
            print(gateway.url)  # tcp://127.0.0.1:15020
    """
    spec = fleet.city.gateway(gateway_id)
    units = _units(fleet, gateway_id)
    models: dict[int, MeterModel] = {}
    for unit, meter in units.items():
        try:
            models[unit] = _model(meter.spec.model)
        except RegisterMapError as exc:
            raise CityConfigError(f"meter {meter.spec.code!r}: {exc}") from exc

    def values(unit: int, _now: object) -> dict[str, float]:
        return units[unit].values(clock())

    def fault(unit: int, _now: object) -> Fault | None:
        meter, now = units[unit], clock()
        if not installed(meter, now):
            return Fault.no_answer()
        odd = misbehaviour(meter, now)
        if odd.silent:
            return Fault.no_answer()
        if odd.corrupt:
            return Fault.refuse(GATEWAY_TARGET_FAILED)
        return Fault.late(odd.delay) if odd.delay else None

    def offline(_now: object) -> bool:
        return fleet.gateway_offline(gateway_id, clock())

    assert spec.port is not None  # modbus gateways have one (the city checked it)
    return ModbusMeterSimulator(
        models,
        provider=values,
        faults=fault,
        offline=offline,
        host=host or spec.host,
        port=spec.port,
        line=modbus_rtu(baud) if baud else None,
    )
