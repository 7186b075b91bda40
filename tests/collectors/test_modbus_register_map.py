"""Register maps, block planning and the register codec of `collectors.modbus` (no I/O)."""

from __future__ import annotations

import copy
import itertools
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.modbus import (
    BadFunctionCodeError,
    BadWordOrderError,
    Block,
    DecodeError,
    DuplicateFieldError,
    EncodeError,
    MeterModel,
    ModelFormatError,
    ModelNotFoundError,
    NonFiniteValueError,
    OverlappingPointsError,
    RegisterMapError,
    UnknownFieldError,
    UnknownTypeError,
    decode_block,
    encode_points,
    list_models,
    load_model,
    parse_model,
    plan_blocks,
)
from meterhub.reading import VALUE_FIELDS

MODELS_DIR = Path(__file__).parents[2] / "collectors" / "modbus" / "models"
SHIPPED = ("acrel_adl400", "chint_dtsu666", "eastron_sdm630")
RANGES = {
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
}
SCALES = (1.0, 10.0, 0.1, 0.01, 0.001, 0.0001)


def one_point(kind: str, *, order: str = "ABCD", scale: float = 1.0) -> MeterModel:
    """A model holding a single `power` point of the given type at address 0x10."""
    point = {"field": "power", "address": 0x10, "type": kind, "scale": scale, "unit": ""}
    return parse_model(base_model(points=[point], word_order=order))


def base_model(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "T1",
        "manufacturer": "Test",
        "function_code": 3,
        "word_order": "ABCD",
        "points": [
            {"field": "voltage_a", "address": 0, "type": "float32", "unit": "V"},
            {"field": "energy", "address": 2, "type": "uint32", "scale": 0.01, "unit": "kWh"},
        ],
    }
    return data | overrides


def spans(blocks: list[Block]) -> list[tuple[int, int, int]]:
    return [(b.function_code, b.address, b.count) for b in blocks]


def min_requests(model: MeterModel, max_gap: int) -> int:
    """Fewest blocks by exhaustive dynamic programming, independent of `plan_blocks`."""
    total = 0
    for fc in {p.function_code for p in model.points}:
        pts = sorted((p for p in model.points if p.function_code == fc), key=lambda p: p.address)
        best = [0] + [len(pts) + 1] * len(pts)
        for j in range(1, len(pts) + 1):
            for i in range(j):
                seg = pts[i:j]
                fits = seg[-1].end - seg[0].address <= model.max_registers
                gaps_ok = all(b.address - a.end <= max_gap for a, b in itertools.pairwise(seg))
                if fits and gaps_ok:
                    best[j] = min(best[j], best[i] + 1)
        total += best[-1]
    return total


# --- shipped models ---------------------------------------------------------------------


def test_list_models_names_shipped_meters_without_template() -> None:
    assert list_models() == SHIPPED


@pytest.mark.parametrize("name", [*SHIPPED, "generic_template"])
def test_every_shipped_file_loads(name: str) -> None:
    model = load_model(name)
    assert model.name and model.manufacturer
    assert {p.field for p in model.points} <= set(VALUE_FIELDS)
    assert load_model(MODELS_DIR / f"{name}.toml") == model
    assert load_model(str(MODELS_DIR / f"{name}.toml")) == model


@pytest.mark.parametrize("name", [*SHIPPED, "generic_template"])
def test_shipped_plans_are_minimal_and_cover_each_point_once(name: str) -> None:
    model = load_model(name)
    for gap in (0, 4, 8, 22, 125):
        blocks = plan_blocks(model, max_gap=gap)
        assert len(blocks) == min_requests(model, gap)
        assert sorted(p.field for b in blocks for p in b.points) == sorted(
            p.field for p in model.points
        )
        for b in blocks:
            assert b.count <= model.max_registers
            assert all(b.address <= p.address and p.end <= b.address + b.count for p in b.points)


def test_sdm630_blocks() -> None:
    model = load_model("eastron_sdm630")
    blocks = plan_blocks(model)  # default max_gap 8: 0x36..0x3D and 0x40..0x47 are bridged
    assert spans(blocks) == [(4, 0x0000, 12), (4, 0x0034, 22)]
    assert [p.field for p in blocks[0].points] == [
        "voltage_a", "voltage_b", "voltage_c", "current_a", "current_b", "current_c"
    ]  # fmt: skip
    assert [p.field for p in blocks[1].points] == ["power", "power_factor", "energy"]
    assert spans(plan_blocks(model, max_gap=7)) == [
        (4, 0x0000, 12), (4, 0x0034, 2), (4, 0x003E, 2), (4, 0x0048, 2)
    ]  # fmt: skip


def test_dtsu666_blocks() -> None:
    model = load_model("chint_dtsu666")
    assert spans(plan_blocks(model)) == [(3, 0x2006, 14), (3, 0x202A, 2), (3, 0x4000, 2)]
    # Pt ends at 0x2014; PFt starts at 0x202A: a hole of 22 registers.
    assert spans(plan_blocks(model, max_gap=21)) == spans(plan_blocks(model))
    assert spans(plan_blocks(model, max_gap=22)) == [(3, 0x2006, 38), (3, 0x4000, 2)]


def test_adl400_and_template_blocks() -> None:
    adl = spans(plan_blocks(load_model("acrel_adl400")))
    assert adl == [(3, 0x0800, 2), (3, 0x080C, 2), (3, 0x0832, 2), (3, 0x0842, 2)]
    # The template groups by function code: FC04 power_factor shares address 0 with FC03.
    tpl = spans(plan_blocks(load_model("generic_template")))
    assert tpl == [(3, 0x0000, 4), (3, 0x0010, 2), (4, 0x0000, 2)]


def test_max_registers_splits_a_block() -> None:
    data = tomllib.loads((MODELS_DIR / "eastron_sdm630.toml").read_text(encoding="utf-8"))
    assert spans(plan_blocks(parse_model(data | {"max_registers": 12}))) == [
        (4, 0x0000, 12), (4, 0x0034, 12), (4, 0x0048, 2)
    ]  # fmt: skip
    assert spans(plan_blocks(parse_model(data | {"max_registers": 8}))) == [
        (4, 0x0000, 8), (4, 0x0008, 4), (4, 0x0034, 2), (4, 0x003E, 2), (4, 0x0048, 2)
    ]  # fmt: skip


def test_model_max_gap_is_the_default_and_the_argument_wins() -> None:
    data = tomllib.loads((MODELS_DIR / "eastron_sdm630.toml").read_text(encoding="utf-8"))
    strict = parse_model(data | {"max_gap": 0})
    assert len(plan_blocks(strict)) == 4
    assert len(plan_blocks(strict, max_gap=8)) == 2
    with pytest.raises(ValueError, match="max_gap"):
        plan_blocks(strict, max_gap=-1)


# --- codec vectors ----------------------------------------------------------------------

# struct.pack(">f", 1206.42).hex() == "4496cd71"; ">f" of 230.2 == "43663333";
# ">i" of -2 == "fffffffe"; 120642 == 0x0001D742.
VECTORS = [
    ("float32", "ABCD", [0x4496, 0xCD71], 1206.4200439453125),
    ("float32", "CDAB", [0xCD71, 0x4496], 1206.4200439453125),
    ("float32", "ABCD", [0x4366, 0x3333], 230.1999969482422),
    ("float32", "CDAB", [0x0000, 0xBFC0], -1.5),
    ("int16", "ABCD", [0xFFFF], -1),
    ("int16", "ABCD", [0x8000], -32768),
    ("int16", "CDAB", [0x7FFF], 32767),
    ("uint16", "ABCD", [0xFFFF], 65535),
    ("uint16", "CDAB", [0x8000], 32768),
    ("int32", "ABCD", [0xFFFF, 0xFFFE], -2),
    ("int32", "CDAB", [0xFFFE, 0xFFFF], -2),
    ("int32", "ABCD", [0x8000, 0x0000], -2147483648),
    ("int32", "CDAB", [0xFFFF, 0x7FFF], 2147483647),
    ("uint32", "ABCD", [0xFFFF, 0xFFFE], 4294967294),
    ("uint32", "ABCD", [0x0001, 0xD742], 120642),
    ("uint32", "CDAB", [0xD742, 0x0001], 120642),
]


@pytest.mark.parametrize(("kind", "order", "words", "raw"), VECTORS)
def test_decode_and_encode_vectors(kind: str, order: str, words: list[int], raw: float) -> None:
    model = one_point(kind, order=order)
    (block,) = plan_blocks(model)
    assert decode_block(block, words) == {"power": raw}
    assert encode_points(model, {"power": raw}) == {(3, 0x10): words}


@pytest.mark.parametrize(
    ("name", "field", "words", "expected"),
    [
        ("chint_dtsu666", "voltage_a", [0x450F, 0xE000], 230.2),  # 2302.0 x 0.1 V
        ("chint_dtsu666", "power", [0x4708, 0xB800], 3.5),  # 35000.0 x 0.1 W
        ("chint_dtsu666", "power_factor", [0x4475, 0x0000], 0.98),  # 980.0 x 0.001
        ("eastron_sdm630", "power", [0x455A, 0xC000], 3.5),  # 3500.0 W
        ("acrel_adl400", "energy", [0x0001, 0xD742], 12064.2),  # 120642 x 0.1 kWh
    ],
)
def test_scale_to_field_units(name: str, field: str, words: list[int], expected: float) -> None:
    block = next(b for b in plan_blocks(load_model(name)) if field in {p.field for p in b.points})
    registers = [0] * block.count
    offset = next(p.address for p in block.points if p.field == field) - block.address
    registers[offset : offset + 2] = words
    assert decode_block(block, registers)[field] == pytest.approx(expected, rel=1e-12)


def test_encode_rounds_scaled_integers() -> None:
    model = one_point("uint16", scale=0.1)
    assert encode_points(model, {"power": 230.26}) == {(3, 0x10): [2303]}
    assert encode_points(one_point("int16", scale=0.01), {"power": -1.5}) == {(3, 0x10): [0xFF6A]}


@pytest.mark.parametrize("words", [[0x7FC0, 0x0000], [0x7F80, 0x0000], [0xFF80, 0x0000]])
def test_non_finite_floats_are_decode_problems(words: list[int]) -> None:
    model = parse_model(base_model())
    (block,) = plan_blocks(model)
    with pytest.raises(NonFiniteValueError) as caught:
        decode_block(block, [*words, 0x0001, 0xD742])
    assert set(caught.value.problems) == {"voltage_a"}
    assert caught.value.values == {"energy": pytest.approx(1206.42)}


def test_non_finite_depends_on_word_order() -> None:
    nan_cdab = [0x0000, 0x7FC0]
    (abcd,) = plan_blocks(one_point("float32"))
    assert math.isfinite(decode_block(abcd, nan_cdab)["power"])
    (cdab,) = plan_blocks(one_point("float32", order="CDAB"))
    with pytest.raises(NonFiniteValueError):
        decode_block(cdab, nan_cdab)


def test_simulated_nan_round_trips_as_a_problem() -> None:
    model = one_point("float32", order="CDAB")
    words = encode_points(model, {"power": math.nan})[(3, 0x10)]
    with pytest.raises(NonFiniteValueError):
        decode_block(plan_blocks(model)[0], words)


@pytest.mark.parametrize("registers", [[0x4366], [0x4366, 0x3333, 0], [-1, 0], [0x10000, 0]])
def test_decode_rejects_registers_that_do_not_fit(registers: list[int]) -> None:
    with pytest.raises(DecodeError):
        decode_block(plan_blocks(one_point("float32"))[0], registers)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("int16", 32768), ("int16", -32769), ("uint16", -1), ("uint16", 65536), ("int32", 2**31),
     ("uint32", -1), ("uint32", 2**32), ("int16", math.nan), ("uint32", math.inf),
     ("float32", 1e39)],
)  # fmt: skip
def test_encode_rejects_unrepresentable_values(kind: str, value: float) -> None:
    with pytest.raises(EncodeError):
        encode_points(one_point(kind), {"power": value})


def test_encode_rejects_fields_the_model_lacks() -> None:
    with pytest.raises(EncodeError, match="current_b"):
        encode_points(one_point("int16"), {"current_b": 1.0})


# --- round trips ------------------------------------------------------------------------


@st.composite
def typed_raw(draw: st.DrawFn, kind: str) -> float:
    """A raw register value the type can hold exactly."""
    if kind == "float32":
        return draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    low, high = RANGES[kind]
    return draw(st.integers(low, high))


@given(
    data=st.data(),
    kind=st.sampled_from(["int16", "uint16", "int32", "uint32", "float32"]),
    order=st.sampled_from(["ABCD", "CDAB"]),
    scale=st.sampled_from(SCALES),
)
def test_round_trip_one_point(data: st.DataObject, kind: str, order: str, scale: float) -> None:
    model = one_point(kind, order=order, scale=scale)
    value = data.draw(typed_raw(kind)) * scale
    words = encode_points(model, {"power": value})[(3, 0x10)]
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode_block(plan_blocks(model)[0], words) == {"power": value}


def _mixed_point(field: str, address: int, kind: str, **extra: Any) -> dict[str, Any]:
    return {"field": field, "address": address, "type": kind, "unit": ""} | extra


#: Every type, both word orders, both function codes, gaps, and a 6-register request limit.
MIXED = parse_model(
    base_model(
        word_order="CDAB",
        max_registers=6,
        points=[
            _mixed_point("voltage_a", 0, "uint16", scale=0.1),
            _mixed_point("voltage_b", 1, "float32"),
            _mixed_point("voltage_c", 3, "int32", word_order="ABCD"),
            _mixed_point("current_a", 9, "int16", scale=0.01),
            _mixed_point("current_b", 10, "uint32", scale=0.001),
            _mixed_point("energy", 40, "float32", word_order="ABCD"),
            _mixed_point("power", 0, "int32", function_code=4),
            _mixed_point("power_factor", 2, "int16", function_code=4, scale=0.001),
        ],
    )
)


@given(data=st.data(), max_gap=st.integers(0, 40))
def test_round_trip_through_planned_blocks(data: st.DataObject, max_gap: int) -> None:
    values = {p.field: data.draw(typed_raw(p.type)) * p.scale for p in MIXED.points}
    memory: dict[tuple[int, int], int] = {}
    for (fc, address), words in encode_points(MIXED, values).items():
        memory.update({(fc, address + i): w for i, w in enumerate(words)})
    decoded: dict[str, float] = {}
    for block in plan_blocks(MIXED, max_gap=max_gap):
        assert block.count <= MIXED.max_registers
        registers = [
            memory.get((block.function_code, block.address + i), 0) for i in range(block.count)
        ]
        decoded |= decode_block(block, registers)
    assert decoded == values


@st.composite
def random_models(draw: st.DrawFn) -> MeterModel:
    points, address = [], 0
    for field in draw(st.lists(st.sampled_from(VALUE_FIELDS), min_size=1, unique=True)):
        kind = draw(st.sampled_from(["int16", "uint16", "int32", "float32"]))
        address += draw(st.integers(0, 12))
        fc = draw(st.sampled_from([3, 4]))
        points.append({"field": field, "address": address, "type": kind, "unit": "",
                       "function_code": fc})  # fmt: skip
        address += 2
    limit = draw(st.integers(2, 24))
    return parse_model(base_model(points=points, max_registers=limit))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(model=random_models(), max_gap=st.integers(0, 10))
def test_greedy_plan_is_minimal(model: MeterModel, max_gap: int) -> None:
    assert len(plan_blocks(model, max_gap=max_gap)) == min_requests(model, max_gap)


# --- validation -------------------------------------------------------------------------


def _point_edit(index: int, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(base_model())
    data["points"][index].update(changes)
    return data


INVALID: list[tuple[dict[str, Any], type[RegisterMapError], str]] = [
    (_point_edit(1, field="energi"), UnknownFieldError, r"points\[1\]: unknown field 'energi'"),
    (_point_edit(0, type="float64"), UnknownTypeError, "float64"),
    (_point_edit(0, type=["int16"]), UnknownTypeError, "int16"),
    (_point_edit(1, address=1), OverlappingPointsError, "voltage_a .* overlaps energy"),
    (_point_edit(1, field="voltage_a"), DuplicateFieldError, "voltage_a"),
    (base_model(word_order="BADC"), BadWordOrderError, "BADC"),
    (_point_edit(0, word_order="abcd"), BadWordOrderError, "abcd"),
    (base_model(function_code=6), BadFunctionCodeError, "6"),
    (base_model(function_code=3.0), BadFunctionCodeError, "3.0"),
    (_point_edit(0, function_code=True), BadFunctionCodeError, "True"),
    (base_model(scael=1), ModelFormatError, "unknown keys"),
    (_point_edit(0, scael=1), ModelFormatError, "unknown keys"),
    (base_model(points=[{"field": "power", "type": "int16", "unit": ""}]), ModelFormatError,
     "missing keys.*address"),
    (base_model(points=[]), ModelFormatError, "non-empty"),
    (base_model(name=""), ModelFormatError, "name"),
    (_point_edit(0, scale=0), ModelFormatError, "scale"),
    (_point_edit(0, scale="0.1"), ModelFormatError, "scale"),
    (_point_edit(0, scale=math.nan), ModelFormatError, "scale"),
    (_point_edit(0, address=-1), ModelFormatError, "address"),
    (_point_edit(0, address=0xFFFF), ModelFormatError, "address"),
    (base_model(max_registers=126), ModelFormatError, "max_registers"),
    (base_model(max_registers=1), ModelFormatError, "max_registers"),
    (base_model(max_gap=-1), ModelFormatError, "max_gap"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "error", "match"), INVALID)
def test_validation_errors(data: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as caught:
        parse_model(data, source="x.toml")
    assert isinstance(caught.value, RegisterMapError)
    assert str(caught.value).startswith("x.toml")


def test_valid_edge_cases() -> None:
    same_address_other_fc = _point_edit(1, address=0, function_code=4)
    assert len(plan_blocks(parse_model(same_address_other_fc))) == 2
    top = parse_model(_point_edit(0, type="uint16", address=0xFFFF))
    assert top.points[0].end == 0x10000


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no_such_meter"):
        load_model("no_such_meter")
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "X\n', encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"broken\.toml"):
        load_model(broken)
    typo = tmp_path / "typo.toml"
    text = (MODELS_DIR / "eastron_sdm630.toml").read_text(encoding="utf-8")
    typo.write_text(text.replace('"current_b"', '"current_bb"'), encoding="utf-8")
    with pytest.raises(UnknownFieldError, match=r"typo\.toml: points\[4\]"):
        load_model(str(typo))
