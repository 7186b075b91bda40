"""Modbus energy meters: register maps as data files, and a pure codec for their registers.

Each meter model is a TOML file in ``models/`` (copy ``generic_template.toml`` for a new
one). `load_model` reads it, `plan_blocks` turns it into the fewest read requests,
`decode_block` turns the registers of one request into reading values, and `encode_points`
does the reverse for simulators. No I/O happens here besides reading the model files.
"""

from collectors.modbus.errors import (
    BadFunctionCodeError,
    BadWordOrderError,
    DecodeError,
    DuplicateFieldError,
    EncodeError,
    ModelFormatError,
    ModelNotFoundError,
    NonFiniteValueError,
    OverlappingPointsError,
    RegisterMapError,
    UnknownFieldError,
    UnknownTypeError,
)
from collectors.modbus.register_map import (
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_REGISTERS,
    MODBUS_MAX_REGISTERS,
    TYPE_WORDS,
    Block,
    FunctionCode,
    MeterModel,
    Point,
    RegisterType,
    WordOrder,
    list_models,
    load_model,
    parse_model,
    plan_blocks,
)
from collectors.modbus.values import decode_block, encode_points

__all__ = [
    "DEFAULT_MAX_GAP",
    "DEFAULT_MAX_REGISTERS",
    "MODBUS_MAX_REGISTERS",
    "TYPE_WORDS",
    "BadFunctionCodeError",
    "BadWordOrderError",
    "Block",
    "DecodeError",
    "DuplicateFieldError",
    "EncodeError",
    "FunctionCode",
    "MeterModel",
    "ModelFormatError",
    "ModelNotFoundError",
    "NonFiniteValueError",
    "OverlappingPointsError",
    "Point",
    "RegisterMapError",
    "RegisterType",
    "UnknownFieldError",
    "UnknownTypeError",
    "WordOrder",
    "decode_block",
    "encode_points",
    "list_models",
    "load_model",
    "parse_model",
    "plan_blocks",
]
