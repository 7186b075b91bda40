"""Pure codec between Modbus register words and reading values, driven by a register map."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Final

from collectors.modbus.errors import DecodeError, EncodeError, NonFiniteValueError
from collectors.modbus.register_map import Block, MeterModel, Point

#: struct format of each register type; every type is big-endian inside its words.
_FORMATS: Final[Mapping[str, str]] = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
}
#: Raw integer range of each integer type.
_RANGES: Final[Mapping[str, tuple[int, int]]] = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}


def decode_block(block: Block, registers: Sequence[int]) -> dict[str, float]:
    """Values of a block's points from the registers one read of that block returned.

    Applies each point's type, word order and scale, giving the field's unit (kWh, kW, V,
    A, PF as a fraction). Raises `DecodeError` when `registers` does not match the block,
    and `NonFiniteValueError` (whose ``values`` keeps the good fields) when a point decodes
    to NaN or infinity: such a value is a garbage read, never a measurement.

    Example::

        >>> block = plan_blocks(load_model("eastron_sdm630"))[0]
        >>> decode_block(block, [0x4366, 0x3333] + [0] * 10)["voltage_a"]
        230.1999969482422
    """
    if len(registers) != block.count:
        raise DecodeError(
            f"block fc{block.function_code} {block.address:#06x} needs {block.count} "
            f"registers, got {len(registers)}"
        )
    if bad := [r for r in registers if not 0 <= r <= 0xFFFF]:
        raise DecodeError(f"register words must be 0..0xFFFF, got {bad[:3]}")
    values: dict[str, float] = {}
    problems: dict[str, str] = {}
    for point in block.points:
        start = point.address - block.address
        raw = _unpack(point, registers[start : start + point.count])
        value = raw * point.scale
        if math.isfinite(value):
            values[point.field] = value
        else:
            problems[point.field] = (
                f"non-finite {point.type} {raw!r} at fc{point.function_code} {point.address:#06x}"
            )
    if problems:
        raise NonFiniteValueError(problems, values)
    return values


def encode_points(
    model: MeterModel, values: Mapping[str, float]
) -> dict[tuple[int, int], list[int]]:
    """Register words for each value, keyed by (function code, address): a meter's view.

    The inverse of `decode_block`: divides by the point's scale, rounds to the nearest
    integer for integer types, and orders the words as the point says. NaN and infinity
    are accepted for float32 points only, so a simulator can reproduce garbage reads.
    Raises `EncodeError` for fields the model lacks or values the type cannot hold.

    Example::

        >>> encode_points(load_model("eastron_sdm630"), {"voltage_a": 230.2})
        {(4, 0): [17254, 13107]}
    """
    words: dict[tuple[int, int], list[int]] = {}
    for field, value in values.items():
        point = model.point(field)
        if point is None:
            raise EncodeError(f"model {model.name} has no point for field {field!r}")
        words[(point.function_code, point.address)] = _pack(point, value)
    return words


def _unpack(point: Point, words: Sequence[int]) -> float:
    ordered = reversed(words) if point.word_order == "CDAB" else words
    data = b"".join(w.to_bytes(2, "big") for w in ordered)
    (raw,) = struct.unpack(_FORMATS[point.type], data)
    return float(raw)


def _pack(point: Point, value: float) -> list[int]:
    raw = value / point.scale
    if point.type == "float32":
        try:
            data = struct.pack(">f", raw)
        except OverflowError as exc:
            raise EncodeError(f"{point.field}: {value!r} overflows float32") from exc
    else:
        low, high = _RANGES[point.type]
        if not math.isfinite(raw) or not low <= round(raw) <= high:
            raise EncodeError(
                f"{point.field}: {value!r} / scale {point.scale} outside {point.type} range"
            )
        data = struct.pack(_FORMATS[point.type], round(raw))
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words[::-1] if point.word_order == "CDAB" else words
