"""The city file: reading a TOML city into a `CityConfig` and writing one back.

The schema is documented in `simulators.config`. Example::

    city = load_city("city.toml")
    write_city(city, "copy.toml")
    assert load_city("copy.toml") == city
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from meterhub.reading import Utility
from simulators.config import (
    ADDRESS_TYPES,
    CityConfig,
    FirmSpec,
    GatewaySpec,
    MeterAddress,
    MeterSpec,
)
from simulators.errors import CityConfigError
from simulators.faults import Fault, fault_from_dict, fault_to_dict
from simulators.firm_data import ClassSpec, ListSpec, OutputAdjust, OutputSpec, ProjectSpec
from simulators.industry import Shift, Weekend

_REQUIRED = object()
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _get(
    table: Mapping[str, Any], key: str, kind: type, *, where: str, default: Any = _REQUIRED
) -> Any:
    if key not in table:
        if default is _REQUIRED:
            raise CityConfigError(f"{where}: `{key}` is missing")
        return default
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CityConfigError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}")
    return value


def _only(table: Mapping[str, Any], cls: type, *, where: str) -> None:
    allowed = {f.name.rstrip("_") for f in fields(cls)}
    if unknown := sorted(set(table) - allowed):
        raise CityConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _list(table: Mapping[str, Any], key: str, *, where: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise CityConfigError(f"{where}: `{key}` must be an array")
    return value


def _faults(table: Mapping[str, Any], *, where: str) -> tuple[Fault, ...]:
    items = _list(table, "faults", where=where)
    return tuple(fault_from_dict(f, where=f"{where}, fault {i}") for i, f in enumerate(items, 1))


E = TypeVar("E", bound=enum.Enum)


def _enum(cls: type[E], value: Any, *, where: str) -> E:
    try:
        return cls(value)
    except ValueError:
        choices = [m.value for m in cls]
        raise CityConfigError(f"{where}: {value!r} is not one of {choices}") from None


def _address(protocol: str, table: Any, *, where: str) -> MeterAddress:
    cls = ADDRESS_TYPES.get(protocol)
    if cls is None:
        raise CityConfigError(f"{where}: protocol {protocol!r} not in {sorted(ADDRESS_TYPES)}")
    if not isinstance(table, dict):
        raise CityConfigError(f"{where}: `address` must be a table")
    _only(table, cls, where=f"{where} address")
    types = {f.name: int if f.type == "int" else str for f in fields(cls)}
    return cls(**{k: _get(table, k, t, where=f"{where} address") for k, t in types.items()})


def _meter(t: Mapping[str, Any], *, where: str) -> MeterSpec:
    _only(t, MeterSpec, where=where)
    protocol = _get(t, "protocol", str, where=where)
    optional = {  # the numeric keys with defaults: ct, pt, load_factor, standby, ...
        f.name: _get(t, f.name, float, where=where, default=f.default)
        for f in fields(MeterSpec)
        if isinstance(f.default, float)
    }
    return MeterSpec(
        id=_get(t, "id", int, where=where),
        code=_get(t, "code", str, where=where),
        utility=_enum(Utility, _get(t, "utility", str, where=where), where=where),
        protocol=protocol,
        address=_address(protocol, t.get("address"), where=where),
        model=_get(t, "model", str, where=where),
        installed_at=_get(t, "installed_at", datetime, where=where),
        rated_power=_get(t, "rated_power", float, where=where),
        faults=_faults(t, where=where),
        **optional,
    )


def _date(table: Mapping[str, Any], key: str, *, where: str, default: Any = _REQUIRED) -> Any:
    value = _get(table, key, date, where=where, default=default)
    if isinstance(value, datetime):
        raise CityConfigError(f"{where}: `{key}` must be a date such as 2026-01-01")
    return value


def _tables(table: Mapping[str, Any], key: str, *, where: str) -> list[tuple[str, Any]]:
    items = _list(table, key, where=where)
    if not all(isinstance(item, dict) for item in items):
        raise CityConfigError(f"{where}: `{key}` must be an array of tables")
    return [(f"{where}, {key} {i}", item) for i, item in enumerate(items, 1)]


def _output(t: Any, *, where: str) -> OutputSpec | None:
    if t is None:
        return None
    if not isinstance(t, dict):
        raise CityConfigError(f"{where}: `output` must be a table")
    _only(t, OutputSpec, where=where)
    numbers = {
        f.name: _get(t, f.name, float, where=where, default=f.default)
        for f in fields(OutputSpec)
        if isinstance(f.default, float) or f.name == "kwh_per_10k_yuan"
    }
    adjust = []
    for at, a in _tables(t, "adjust", where=where):
        _only(a, OutputAdjust, where=at)
        month = _date(a, "month", where=at)
        adjust.append(OutputAdjust(month=month, factor=_get(a, "factor", float, where=at)))
    employees = _get(t, "employees", int, where=where, default=50)
    return OutputSpec(**numbers, employees=employees, adjust=tuple(adjust))


def _firm_data(
    t: Mapping[str, Any], *, where: str
) -> tuple[tuple[ListSpec, ...], tuple[ProjectSpec, ...], tuple[ClassSpec, ...]]:
    lists, projects, classes = [], [], []
    for at, item in _tables(t, "lists", where=where):
        _only(item, ListSpec, where=at)
        lists.append(
            ListSpec(
                list=_get(item, "list", str, where=at),
                since=_date(item, "since", where=at),
                until=_date(item, "until", where=at, default=None),
            )
        )
    for at, item in _tables(t, "projects", where=where):
        _only(item, ProjectSpec, where=at)
        projects.append(
            ProjectSpec(
                name=_get(item, "name", str, where=at),
                year=_get(item, "year", int, where=at),
                design_tce=_get(item, "design_tce", float, where=at, default=None),
            )
        )
    for at, item in _tables(t, "classes", where=where):
        _only(item, ClassSpec, where=at)
        year, klass = _get(item, "year", int, where=at), _get(item, "class", str, where=at)
        classes.append(ClassSpec(year=year, class_=klass))
    return tuple(lists), tuple(projects), tuple(classes)


def _firm(t: Mapping[str, Any], *, where: str) -> FirmSpec:
    _only(t, FirmSpec, where=where)
    shift, weekend = t.get("shift"), t.get("weekend")
    tags = _list(t, "tags", where=where)
    if not all(isinstance(tag, str) for tag in tags):
        raise CityConfigError(f"{where}: tags must be strings")
    name = _get(t, "name", str, where=where)
    meters = _list(t, "meters", where=where)
    expect = _list(t, "expect", where=where)
    if not all(isinstance(code, str) for code in expect):
        raise CityConfigError(f"{where}: expect must be rule codes (strings)")
    lists, projects, classes = _firm_data(t, where=where)
    return FirmSpec(
        credit_code=_get(t, "credit_code", str, where=where),
        name=name,
        industry=_get(t, "industry", str, where=where),
        town=_get(t, "town", str, where=where),
        land_mu=_get(t, "land_mu", float, where=where, default=None),
        above_scale=_get(t, "above_scale", bool, where=where, default=False),
        tags=tuple(tags),
        shift=None if shift is None else _enum(Shift, shift, where=where),
        weekend=None if weekend is None else _enum(Weekend, weekend, where=where),
        expect=tuple(expect),
        output=_output(t.get("output"), where=f"{where}, output"),
        lists=lists,
        projects=projects,
        classes=classes,
        meters=tuple(_meter(m, where=f"{where}, meter {i}") for i, m in enumerate(meters, 1)),
    )


def _gateway(t: Mapping[str, Any], *, where: str) -> GatewaySpec:
    _only(t, GatewaySpec, where=where)
    protocol = _get(t, "protocol", str, where=where)
    if protocol not in ("modbus", "dlt645", "mqtt"):
        raise CityConfigError(f"{where}: protocol {protocol!r} not in modbus, dlt645, mqtt")
    return GatewaySpec(
        id=_get(t, "id", str, where=where),
        protocol=protocol,
        host=_get(t, "host", str, where=where, default="127.0.0.1"),
        port=_get(t, "port", int, where=where, default=None),
        faults=_faults(t, where=where),
    )


def parse_city(data: Mapping[str, Any], *, source: str = "<city>") -> CityConfig:
    """Build a validated `CityConfig` from parsed TOML; errors name the offending table."""
    _only(data, CityConfig, where=source)
    gateways = _list(data, "gateways", where=source)
    firms = _list(data, "firms", where=source)
    try:
        return CityConfig(
            seed=_get(data, "seed", int, where=source),
            name=_get(data, "name", str, where=source, default="simulated city"),
            start=_get(data, "start", datetime, where=source, default=None),
            tou=_get(data, "tou", str, where=source, default=None),
            gateways=tuple(
                _gateway(g, where=f"{source}: gateway {i}") for i, g in enumerate(gateways, 1)
            ),
            firms=tuple(_firm(f, where=f"{source}: firm {i}") for i, f in enumerate(firms, 1)),
        )
    except (TypeError, AttributeError) as exc:  # a table where a value belongs, or vice versa
        raise CityConfigError(f"{source}: malformed: {exc}") from None


def load_city(path: str | os.PathLike[str]) -> CityConfig:
    """Read and validate a city file; a relative ``tou`` path is taken from the file's folder."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CityConfigError(f"cannot read city file {str(file)!r}: {exc}") from exc
    tou = data.get("tou")
    if isinstance(tou, str) and not Path(tou).is_absolute():
        data["tou"] = str(file.parent / tou)
    return parse_city(data, source=str(file))


def _plain(value: Any) -> Any:
    if isinstance(value, Fault):
        return fault_to_dict(value)
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for spec in fields(value):
            item = getattr(value, spec.name)
            if item is None or item == () or (spec.default is not MISSING and item == spec.default):
                continue
            out[spec.name.rstrip("_")] = _plain(item)
        return out
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.value if isinstance(value, enum.Enum) else value


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CityConfigError(f"cannot write naive time {value!r}")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise CityConfigError(f"cannot write {value!r} to TOML")  # pragma: no cover


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _emit(table: Mapping[str, Any], prefix: str, lines: list[str]) -> None:
    arrays = {
        k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], dict)
    }
    lines.extend(f"{_key(k)} = {_toml(v)}" for k, v in table.items() if k not in arrays)
    for key, items in arrays.items():
        for item in items:
            lines.extend(("", f"[[{prefix}{_key(key)}]]"))
            _emit(item, f"{prefix}{_key(key)}.", lines)


def dump_city(city: CityConfig) -> str:
    """The city as TOML text that `parse_city` reads back to an equal `CityConfig`."""
    lines = ["# A simulated city for meterhub (schema: simulators/config.py)."]
    _emit(_plain(city), "", lines)
    return "\n".join(lines) + "\n"


def write_city(city: CityConfig, path: str | os.PathLike[str]) -> None:
    """Write `dump_city` to ``path`` (UTF-8)."""
    Path(path).write_text(dump_city(city), encoding="utf-8")
