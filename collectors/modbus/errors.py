"""Errors of the Modbus register maps and their codec, under one root."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.errors import CollectorError


class RegisterMapError(CollectorError):
    """Root of every register-map, decode and encode error."""


class ModelNotFoundError(RegisterMapError):
    """No shipped model of that name, or the file cannot be read."""


class ModelFormatError(RegisterMapError):
    """The model file is not valid TOML or breaks the schema."""


class UnknownFieldError(ModelFormatError):
    """A point names a field that is not in `meterhub.reading.VALUE_FIELDS`."""


class UnknownTypeError(ModelFormatError):
    """A point's type is not int16, uint16, int32, uint32 or float32."""


class BadWordOrderError(ModelFormatError):
    """A word order other than "ABCD" or "CDAB"."""


class BadFunctionCodeError(ModelFormatError):
    """A function code other than 3 (holding) or 4 (input registers)."""


class DuplicateFieldError(ModelFormatError):
    """Two points fill the same reading field."""


class OverlappingPointsError(ModelFormatError):
    """Two points share a register under the same function code."""


class DecodeError(RegisterMapError):
    """The registers handed to `decode_block` do not fit the block."""


class NonFiniteValueError(DecodeError):
    """Some points decoded to NaN or infinity.

    ``problems`` maps each such field to a description; ``values`` holds the fields of
    the same block that decoded fine, so a caller may keep them.
    """

    def __init__(self, problems: Mapping[str, str], values: Mapping[str, float]) -> None:
        super().__init__("; ".join(f"{f}: {p}" for f, p in problems.items()))
        self.problems = dict(problems)
        self.values = dict(values)


class EncodeError(RegisterMapError):
    """A value cannot be written into its point's register type."""
