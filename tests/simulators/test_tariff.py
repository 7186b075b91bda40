"""Time-of-use tables: lookups at period boundaries (local time) and table validation."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from meterhub.reading import TARIFFS
from simulators.errors import NaiveTimeError, TariffTableError
from simulators.tariff import SLOTS_PER_DAY, load_tou, parse_tou
from tests.simulators.core_builders import at

TABLE = load_tou()


@pytest.mark.parametrize(
    ("when", "tariff"),
    [
        (at(2026, 3, 2, 0, 0), "valley"),
        (at(2026, 3, 2, 7, 59, 59), "valley"),
        (at(2026, 3, 2, 8, 0), "peak"),
        (at(2026, 3, 2, 8, 59, 59), "peak"),
        (at(2026, 3, 2, 9, 0), "sharp"),
        (at(2026, 3, 2, 10, 59), "sharp"),
        (at(2026, 3, 2, 11, 0), "valley"),
        (at(2026, 3, 2, 13, 0), "peak"),
        (at(2026, 3, 2, 14, 59), "peak"),
        (at(2026, 3, 2, 15, 0), "sharp"),
        (at(2026, 3, 2, 17, 0), "peak"),
        (at(2026, 3, 2, 19, 0), "flat"),
        (at(2026, 3, 2, 21, 59, 59), "flat"),
        (at(2026, 3, 2, 22, 0), "valley"),
        (at(2026, 3, 2, 23, 59, 59), "valley"),
        (at(2026, 7, 15, 13, 0), "sharp"),  # summer schedule
        (at(2026, 7, 15, 14, 59), "sharp"),
        (at(2026, 8, 31, 23, 0), "valley"),
        (at(2026, 9, 1, 13, 0), "peak"),
    ],
)
def test_tariff_at_boundaries(when: datetime, tariff: str) -> None:
    assert TABLE.tariff_at(when) == tariff
    assert TARIFFS[TABLE.index_at(when)] == tariff


def test_lookup_is_in_local_time() -> None:
    # 01:00 UTC is 09:00 in Asia/Shanghai: sharp, not valley.
    assert TABLE.tariff_at(datetime(2026, 3, 2, 1, 0, tzinfo=UTC)) == "sharp"
    # 23:30 UTC on the last of August is 07:30 on 1 September local.
    assert TABLE.tariff_at(datetime(2026, 8, 31, 23, 30, tzinfo=UTC)) == "valley"


def test_naive_time_is_refused() -> None:
    with pytest.raises(NaiveTimeError):
        TABLE.tariff_at(datetime(2026, 3, 2, 9, 0))


def test_runs_cover_each_month_in_order() -> None:
    for month in range(1, 13):
        runs = TABLE.runs_for(month)
        assert runs[0][0] == 0 and runs[-1][1] == SLOTS_PER_DAY
        assert all(a[1] == b[0] and a[2] != b[2] for a, b in pairwise(runs))
    assert TABLE.runs_for(3) == (
        (0, 96, 3), (96, 108, 1), (108, 132, 0), (132, 156, 3), (156, 180, 1),
        (180, 204, 0), (204, 228, 1), (228, 264, 2), (264, 288, 3),
    )  # fmt: skip


def _table(periods: list[dict[str, str]], months: list[int] | None = None) -> dict[str, object]:
    return {"schedules": [{"months": months or list(range(1, 13)), "periods": periods}]}


def test_a_custom_table_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "flat.toml"
    path.write_text(
        'name = "all flat"\n[[schedules]]\nmonths = [1,2,3,4,5,6,7,8,9,10,11,12]\n'
        'periods = [{ start = "00:00", end = "24:00", tariff = "flat" }]\n'
    )
    table = load_tou(path)
    assert table.name == "all flat"
    assert table.tariff_at(at(2026, 5, 5, 9, 30)) == "flat"
    assert table.runs_for(5) == ((0, SLOTS_PER_DAY, 2),)


def test_neighbouring_periods_of_one_tariff_merge() -> None:
    table = parse_tou(
        _table(
            [
                {"start": "00:00", "end": "06:00", "tariff": "valley"},
                {"start": "06:00", "end": "08:00", "tariff": "valley"},
                {"start": "08:00", "end": "24:00", "tariff": "peak"},
            ]
        )
    )
    assert table.runs_for(1) == ((0, 96, 3), (96, 288, 1))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "schedules"),
        (_table([{"start": "00:00", "end": "12:00", "tariff": "flat"}]), "not 24:00"),
        (
            _table(
                [
                    {"start": "00:00", "end": "12:00", "tariff": "flat"},
                    {"start": "11:00", "end": "24:00", "tariff": "peak"},
                ]
            ),
            "without gaps",
        ),
        (_table([{"start": "00:00", "end": "24:00", "tariff": "cheap"}]), "cheap"),
        (_table([{"start": "00:00", "end": "24:00", "tariff": "flat"}], [1, 2]), "no schedule"),
        (_table([{"start": "00:00", "end": "07:03", "tariff": "flat"}]), "5-minute grid"),
        (_table([{"start": "0:00", "end": "24:00", "tariff": "flat"}]), "HH:MM"),
        (_table([{"start": "00:00", "end": "25:00", "tariff": "flat"}]), "between"),
        (_table([{"start": "00:00", "end": "24:00"}]), "exactly"),
        (
            {
                "schedules": [
                    {
                        "months": [1],
                        "periods": [{"start": "00:00", "end": "24:00", "tariff": "flat"}],
                    },
                    {
                        "months": [1],
                        "periods": [{"start": "00:00", "end": "24:00", "tariff": "flat"}],
                    },
                ]
            },
            "twice",
        ),
    ],
)
def test_bad_tables_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(TariffTableError, match=message):
        parse_tou(data)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TariffTableError, match="cannot read"):
        load_tou(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("schedules = [")
    with pytest.raises(TariffTableError, match="not valid TOML"):
        load_tou(bad)
