"""Pure parts of the reference data: days and cuts as sheets write them, membership overlap,
Chinese coded values, and the SQL a table spec makes."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from registry.reference.cuts import parse_cuts
from registry.reference.lists import MembershipIn, overlaps
from registry.reference.schemes import Scheme
from registry.reference.tables import HOLIDAYS, GridFactor, Holiday
from registry.reference.values import parse_day


@pytest.mark.parametrize(
    "text", ["2026-02-16", "2026/2/16", "2026.2.16", "2026年2月16日", "2026-02-16 00:00:00"]
)
def test_days_as_sheets_write_them(text: str) -> None:
    assert parse_day(text) == date(2026, 2, 16)


@pytest.mark.parametrize("text", ["16/02/2026", "2026-02", "tomorrow", "2026-02-16 08:00:00"])
def test_other_days_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="2026年2月16日"):
        parse_day(text)


@pytest.mark.parametrize(
    "text",
    [
        "A=0.2;B=0.6;C=0.95",
        "a:0.2, b:0.6, c:0.95",
        "A=0.2；B=0.6；C=0.95",
        '{"A":0.2,"B":0.6,"C":0.95}',
    ],
)
def test_cuts_as_cells_write_them(text: str) -> None:
    assert parse_cuts(text) == {"A": 0.2, "B": 0.6, "C": 0.95}


@pytest.mark.parametrize("text", ["A 0.2", "A=x", "[0.2]", "{"])
def test_other_cuts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cuts"):
        parse_cuts(text)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((date(2026, 1, 1), date(2026, 6, 1)), (date(2026, 6, 1), None), False),  # until excl.
        ((date(2026, 1, 1), date(2026, 6, 2)), (date(2026, 6, 1), None), True),
        ((date(2026, 1, 1), None), (date(2020, 1, 1), date(2026, 1, 1)), False),
        ((date(2026, 1, 1), None), (date(2030, 1, 1), None), True),
        ((date(2026, 3, 1), date(2026, 4, 1)), (date(2026, 1, 1), date(2027, 1, 1)), True),
    ],
)
def test_overlap_of_memberships(
    a: tuple[date, date | None], b: tuple[date, date | None], expected: bool
) -> None:
    assert overlaps(*a, *b) is expected
    assert overlaps(*b, *a) is expected


def test_chinese_values_become_codes() -> None:
    holiday = Holiday.model_validate(
        {"day": "2026/10/1", "kind": "节假日", "name": "国庆", "source": "x"}
    )
    assert (holiday.day, holiday.kind) == (date(2026, 10, 1), "holiday")
    member = MembershipIn.model_validate(
        {"list": "未整改D类", "since": "2026年1月1日", "source": "x"}
    )
    assert (member.list, member.since) == ("unrectified_d", date(2026, 1, 1))
    factor = GridFactor.model_validate(
        {
            "year": 2022,
            "region": "zhejiang",
            "kind": "平均",
            "tco2_per_mwh": 0.5153,
            "unit": "kgCO2/kWh",
            "source": "x",
        }
    )
    assert (factor.kind, factor.unit) == ("average", "tCO2/MWh")


def test_rows_without_source_or_with_a_backwards_end_are_refused() -> None:
    with pytest.raises(ValidationError, match="until must be after since"):
        MembershipIn.model_validate(
            {"list": "d_class", "since": "2026-01-01", "until": "2026-01-01", "source": "x"}
        )
    with pytest.raises(ValidationError, match="source"):
        Holiday.model_validate(
            {"day": "2026-10-01", "kind": "holiday", "name": "国庆", "source": " "}
        )


def test_table_sql_names_its_columns() -> None:
    assert HOLIDAYS.upsert_sql() == (
        "INSERT INTO holidays AS t (day, kind, name, source) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (day) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, "
        "source = EXCLUDED.source WHERE (t.kind, t.name, t.source) IS DISTINCT FROM "
        "(EXCLUDED.kind, EXCLUDED.name, EXCLUDED.source) RETURNING xmax = 0"
    )
    assert HOLIDAYS.delete_sql() == (
        "DELETE FROM holidays WHERE day = $1 RETURNING day, kind, name, source"
    )


def _scheme(**changes: object) -> dict[str, object]:
    item = {"cohort": "above_scale", "indicator": "tax_per_mu", "weight": 100, "benchmark": 25}
    return {
        "id": "t-1",
        "name": "t",
        "year": 2031,
        "cuts": {"A": 0.2, "B": 0.6, "C": 0.95},
        "source": "t",
        "indicators": [item | {"unit": "万元/亩"}],
    } | changes


def test_scheme_cuts_follow_the_evaluation_rules() -> None:
    assert Scheme.model_validate(_scheme(cuts={"A": 0.1, "B": 1.0})).cuts == {"A": 0.1, "B": 1.0}
    bands = Scheme.model_validate(_scheme(classing="bands", cuts={"A": 90, "B": 75, "C": 60}))
    assert bands.cuts["C"] == 60
    for cuts, classing in (
        ({"A": 0.6, "B": 0.2}, "percentile"),
        ({"A": 0.2, "B": 1.5}, "percentile"),
        ({"A": 60, "B": 75}, "bands"),
        ({}, "percentile"),
        ({"D": 0.9}, "percentile"),
    ):
        with pytest.raises(ValidationError):
            Scheme.model_validate(_scheme(cuts=cuts, classing=classing))
    twice = _scheme()["indicators"] * 2  # type: ignore[operator]
    with pytest.raises(ValidationError, match="given twice"):
        Scheme.model_validate(_scheme(indicators=twice))


def test_what_postgresql_cannot_hold_is_refused() -> None:
    with pytest.raises(ValidationError):
        Scheme.model_validate(_scheme(cuts={"A": float("nan")}))
    with pytest.raises(ValidationError):
        MembershipIn.model_validate(
            {"list": "d_class", "since": "2026-01-01", "source": "x", "note": "a\x00b"}
        )
    with pytest.raises(ValidationError):
        Holiday.model_validate(
            {"day": "2026-10-01", "kind": "holiday", "name": "x", "source": "\x00"}
        )
