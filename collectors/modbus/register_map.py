"""Meter register maps: one TOML data file per meter model, and the read plan built from it."""

from __future__ import annotations

import itertools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, Literal, cast, get_args

from collectors.modbus.errors import (
    BadFunctionCodeError,
    BadWordOrderError,
    DuplicateFieldError,
    ModelFormatError,
    ModelNotFoundError,
    OverlappingPointsError,
    UnknownFieldError,
    UnknownTypeError,
)
from meterhub.reading import VALUE_FIELDS

RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32"]
WordOrder = Literal["ABCD", "CDAB"]
FunctionCode = Literal[3, 4]

#: Width of each register type in 16-bit words.
TYPE_WORDS: Final[Mapping[str, int]] = dict(int16=1, uint16=1, int32=2, uint32=2, float32=2)
#: Modbus caps one FC03/FC04 read at 125 registers.
MODBUS_MAX_REGISTERS: Final = 125
DEFAULT_MAX_REGISTERS: Final = 100
#: Unread registers a block may span between two points before a new request is cheaper.
DEFAULT_MAX_GAP: Final = 8

_MODEL_KEYS = frozenset(
    {"name", "manufacturer", "function_code", "word_order", "max_registers", "max_gap", "points"}
)
_POINT_KEYS = frozenset(
    {"field", "address", "type", "scale", "unit", "function_code", "word_order"}
)
_MODEL_REQUIRED = _MODEL_KEYS - {"max_registers", "max_gap"}
_POINT_REQUIRED = _POINT_KEYS - {"scale", "function_code", "word_order"}
_NAME_RE = re.compile(r"[a-z0-9_]+")
_TEMPLATE = "_template"  # shipped files named like this are templates, not meters
_TYPES = tuple(TYPE_WORDS)


@dataclass(frozen=True, slots=True)
class Point:
    """Where one reading field lives; `function_code` and `word_order` are already resolved."""

    field: str
    address: int
    type: RegisterType
    scale: float
    function_code: FunctionCode
    word_order: WordOrder
    unit: str

    @property
    def count(self) -> int:
        return TYPE_WORDS[self.type]

    @property
    def end(self) -> int:
        """First register after this point."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class MeterModel:
    """A meter model's register map; `max_gap` None means `DEFAULT_MAX_GAP`."""

    name: str
    manufacturer: str
    function_code: FunctionCode
    word_order: WordOrder
    points: tuple[Point, ...]
    max_registers: int = DEFAULT_MAX_REGISTERS
    max_gap: int | None = None

    def point(self, field: str) -> Point | None:
        return next((p for p in self.points if p.field == field), None)


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: `count` registers from `address`, holding `points` in address order."""

    function_code: FunctionCode
    address: int
    count: int
    points: tuple[Point, ...]


def list_models() -> tuple[str, ...]:
    """Names of the shipped meter models, for `load_model`; templates are left out.

    Example::

        >>> "eastron_sdm630" in list_models()
        True
    """
    stems = (f.name[:-5] for f in _models_dir().iterdir() if f.name.endswith(".toml"))
    return tuple(sorted(n for n in stems if _NAME_RE.fullmatch(n) and not n.endswith(_TEMPLATE)))


def load_model(name_or_path: str | os.PathLike[str]) -> MeterModel:
    """Load a shipped model by name (``"eastron_sdm630"``) or a TOML file by path.

    A string other than a bare name of ``[a-z0-9_]`` is a path. Raises
    `ModelNotFoundError`, or a `ModelFormatError` subclass naming the file and point.

    Example::

        >>> load_model("eastron_sdm630").function_code
        4
    """
    if isinstance(name_or_path, os.PathLike) or not _NAME_RE.fullmatch(name_or_path):
        path = Path(name_or_path)
        source, text = str(path), _read(path, str(path))
    else:
        source = f"{name_or_path}.toml"
        text = _read(_models_dir() / source, f"model {name_or_path!r}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFormatError(f"{source}: {exc}") from exc
    return parse_model(data, source=source)


def parse_model(data: Mapping[str, Any], *, source: str = "<model>") -> MeterModel:
    """Validate an already parsed TOML table; `source` prefixes error messages.

    Example::

        >>> parse_model({"name": "X", "manufacturer": "Y", "function_code": 3,
        ...     "word_order": "ABCD", "points": [{"field": "power", "address": 0,
        ...     "type": "int16", "scale": 0.01, "unit": "10 W"}]}).points[0].scale
        0.01
    """
    _check_keys(data, _MODEL_KEYS, required=_MODEL_REQUIRED, where=source)
    function_code = _function_code(data["function_code"], source)
    word_order = _word_order(data["word_order"], source)
    limit = MODBUS_MAX_REGISTERS
    max_registers = data.get("max_registers", DEFAULT_MAX_REGISTERS)
    max_registers = _int(max_registers, "max_registers", where=source, low=2, high=limit)
    max_gap = data.get("max_gap")
    max_gap = None if max_gap is None else _int(max_gap, "max_gap", where=source, low=0, high=limit)
    raw_points = data["points"]
    if not isinstance(raw_points, list) or not raw_points:
        raise ModelFormatError(f"{source}: points must be a non-empty array of tables")
    points = tuple(
        _parse_point(raw, where=f"{source}: points[{i}]", fc=function_code, order=word_order)
        for i, raw in enumerate(raw_points)
    )
    _check_points(points, source=source)
    return MeterModel(
        name=_str(data["name"], "name", where=source),
        manufacturer=_str(data["manufacturer"], "manufacturer", where=source),
        function_code=function_code,
        word_order=word_order,
        points=points,
        max_registers=max_registers,
        max_gap=max_gap,
    )


def plan_blocks(model: MeterModel, *, max_gap: int | None = None) -> list[Block]:
    """The fewest read requests covering every point of `model`.

    Points of one function code are merged in address order while the hole between two
    neighbours is at most `max_gap` registers (argument, else the model's, else
    `DEFAULT_MAX_GAP`) and the block stays within the model's `max_registers`. Greedy
    merging is optimal here because any run of points inside a valid block is valid too.

    Example::

        >>> [(b.address, b.count) for b in plan_blocks(load_model("eastron_sdm630"))]
        [(0, 12), (52, 22)]
    """
    gap = max_gap if max_gap is not None else model.max_gap
    gap = DEFAULT_MAX_GAP if gap is None else gap
    if gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {gap}")
    blocks: list[Block] = []
    for fc in sorted({p.function_code for p in model.points}):
        run: list[Point] = []
        for point in sorted(
            (p for p in model.points if p.function_code == fc), key=attrgetter("address")
        ):
            if run and (
                point.address - run[-1].end > gap
                or point.end - run[0].address > model.max_registers
            ):
                blocks.append(_block(run))
                run = []
            run.append(point)
        blocks.append(_block(run))
    return blocks


def _block(run: list[Point]) -> Block:
    first = run[0]
    return Block(first.function_code, first.address, run[-1].end - first.address, tuple(run))


def _models_dir() -> Traversable:
    return resources.files(__package__ or "collectors.modbus") / "models"


def _read(file: Path | Traversable, what: str) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelNotFoundError(f"cannot read {what}: {exc}") from exc


def _parse_point(raw: object, *, where: str, fc: FunctionCode, order: WordOrder) -> Point:
    if not isinstance(raw, dict):
        raise ModelFormatError(f"{where}: must be a table")
    _check_keys(raw, _POINT_KEYS, required=_POINT_REQUIRED, where=where)
    field = raw["field"]
    if field not in VALUE_FIELDS:
        raise UnknownFieldError(f"{where}: unknown field {field!r}; expected one of {VALUE_FIELDS}")
    kind = raw["type"]
    if not isinstance(kind, str) or kind not in TYPE_WORDS:
        raise UnknownTypeError(f"{where}: unknown type {kind!r}; expected one of {_TYPES}")
    scale = raw.get("scale", 1.0)
    if type(scale) not in (int, float) or not math.isfinite(scale) or scale == 0:
        raise ModelFormatError(f"{where}: scale must be a finite non-zero number, got {scale!r}")
    address = _int(raw["address"], "address", where=where, low=0, high=0x10000 - TYPE_WORDS[kind])
    return Point(
        field=field,
        address=address,
        type=cast(RegisterType, kind),
        scale=float(scale),
        function_code=_function_code(raw.get("function_code", fc), where),
        word_order=_word_order(raw.get("word_order", order), where),
        unit=_str(raw["unit"], "unit", where=where, allow_empty=True),
    )


def _check_points(points: tuple[Point, ...], *, source: str) -> None:
    seen: set[str] = set()
    for p in points:
        if p.field in seen:
            raise DuplicateFieldError(f"{source}: field {p.field!r} appears twice")
        seen.add(p.field)
    ordered = sorted(points, key=lambda p: (p.function_code, p.address))
    for a, b in itertools.pairwise(ordered):
        if a.function_code == b.function_code and b.address < a.end:
            raise OverlappingPointsError(
                f"{source}: {a.field} ({a.address:#06x}..{a.end - 1:#06x}) overlaps "
                f"{b.field} ({b.address:#06x}) under function code {a.function_code}"
            )


def _check_keys(
    data: Mapping[str, Any], allowed: frozenset[str], *, required: frozenset[str], where: str
) -> None:
    if unknown := sorted(set(data) - allowed):
        raise ModelFormatError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    if missing := sorted(required - set(data)):
        raise ModelFormatError(f"{where}: missing keys {missing}")


def _function_code(value: object, where: str) -> FunctionCode:
    if type(value) is not int or value not in get_args(FunctionCode):
        raise BadFunctionCodeError(f"{where}: function_code must be 3 or 4, got {value!r}")
    return cast(FunctionCode, value)


def _word_order(value: object, where: str) -> WordOrder:
    if value not in get_args(WordOrder):
        raise BadWordOrderError(f"{where}: word_order must be 'ABCD' or 'CDAB', got {value!r}")
    return cast(WordOrder, value)


def _int(value: object, key: str, *, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ModelFormatError(f"{where}: {key} must be an integer in {low}..{high}, got {value!r}")
    return value


def _str(value: object, key: str, *, where: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or not (value or allow_empty):
        raise ModelFormatError(f"{where}: {key} must be a {'' if allow_empty else 'non-empty '}str")
    return value
