"""The per-mu evaluation core on hand-made years: indicators, scores, cohorts, classes."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from alerts.energy import Factors
from alerts.evaluation import (
    Classing,
    InvalidSchemeError,
    Item,
    Method,
    Scheme,
    evaluate,
)
from tests.alerts.evaluation_seed import year

# Huangyan 2022 (example data, as seeded by migrations/0007_analytics.sql).
ABOVE = (
    Item("above_scale", "tax_per_mu", 30, 24.097, "万元/亩"),
    Item("above_scale", "va_per_mu", 20, 136.16, "万元/亩"),
    Item("above_scale", "va_per_tce", 20, 2.694, "万元/吨标准煤"),
    Item("above_scale", "va_per_t_emissions", 10, 4929.81, "万元/吨"),
    Item("above_scale", "va_per_employee", 10, 18.14, "万元/人"),
    Item("above_scale", "rnd_share", 10, 0.0302, "比值"),
)
BELOW = tuple(
    Item(cohort, indicator, 50, benchmark, unit)
    for cohort in ("below_scale_3mu", "below_scale_small")
    for indicator, benchmark, unit in (
        ("tax_per_mu", 11.5932, "万元/亩"),
        ("tax_per_kwh", 0.2352, "元/千瓦时"),
    )
)
CUTS = {"A": 0.2, "B": 0.6, "C": 0.95}
FACTORS = Factors(electricity=0.3, gas=1.2143, water=0.2571)  # 等价值 electricity


def scheme(
    *,
    items: tuple[Item, ...] = ABOVE + BELOW,
    method: Method = Method.RATIO,
    classing: Classing = Classing.PERCENTILE,
    cuts: dict[str, float] | None = None,
) -> Scheme:
    return Scheme(
        id="huangyan-2022",
        name="example",
        year=2022,
        method=method,
        classing=classing,
        cuts=CUTS if cuts is None else cuts,
        items=items,
    )


#: An above-scale firm, worked by hand under Huangyan 2022 (twelve months of figures):
HAND_ABOVE: dict[str, Any] = {
    "above_scale": True,
    "land_mu": 20.0,
    "tax_paid": 3_614_550.0,  # 361.455 万元
    "value_added": 40_848_000.0,  # 4084.8 万元
    "kwh": 6_000_000.0,
    "gas_m3": 120_000.0,
    "emissions_t": 0.5,
    "employees": 200.0,
    "rnd_spend": 1_449_600.0,
    "main_revenue": 96_000_000.0,
}
# tax_per_mu   361.455 / 20 = 18.07275          / 24.097  = 0.75     x 30 = 22.5
# va_per_mu    4084.8 / 20 = 204.24             / 136.16  = 1.5      x 20 = 30.0
# va_per_tce   tce = (6e6 x 0.3 + 120000 x 1.2143) / 1000 = 1945.716;
#              4084.8 / 1945.716 = 2.0993814    / 2.694   = 0.7792804 x 20 = 15.585608
# va_per_t_em. 4084.8 / 0.5 = 8169.6            / 4929.81 = 1.6571835 x 10 = 16.571835
# va_per_emp.  4084.8 / 200 = 20.424            / 18.14   = 1.1259096 x 10 = 11.259096
# rnd_share    1449600 / 96e6 = 0.0151          / 0.0302  = 0.5      x 10 = 5.0
# score        22.5 + 30.0 + 15.585608 + 16.571835 + 11.259096 + 5.0 = 100.916539
HAND_ABOVE_SCORE = 100.916539

#: A below-scale firm on 5 mu (the >= 3 mu cohort):
HAND_BELOW: dict[str, Any] = {
    "above_scale": False,
    "land_mu": 5.0,
    "tax_paid": 600_000.0,  # 60 万元
    "kwh": 2_000_000.0,
}
# tax_per_mu   60 / 5 = 12                      / 11.5932 = 1.0350895 x 50 = 51.754477
# tax_per_kwh  600000 / 2e6 = 0.3 yuan/kWh      / 0.2352  = 1.2755102 x 50 = 63.775510
# score        51.754477 + 63.775510 = 115.529987
HAND_BELOW_SCORE = 115.529987


def test_a_hand_computed_above_scale_firm() -> None:
    row = evaluate(year(HAND_ABOVE), scheme=scheme(), factors=FACTORS).row(0, named=True)
    assert row["cohort"] == "above_scale"
    assert row["tce"] == pytest.approx(1945.716)
    assert row["tax_per_mu"] == pytest.approx(18.07275)
    assert row["va_per_tce"] == pytest.approx(2.0993814, rel=1e-7)
    assert row["score_tax_per_mu"] == pytest.approx(22.5)
    assert row["score_va_per_mu"] == pytest.approx(30.0)
    assert row["score_va_per_tce"] == pytest.approx(15.585608, abs=1e-6)
    assert row["score_va_per_t_emissions"] == pytest.approx(16.571835, abs=1e-6)
    assert row["score_va_per_employee"] == pytest.approx(11.259096, abs=1e-6)
    assert row["score_rnd_share"] == pytest.approx(5.0)
    assert row["score"] == pytest.approx(HAND_ABOVE_SCORE, abs=1e-6)


def test_a_hand_computed_below_scale_firm() -> None:
    row = evaluate(year(HAND_BELOW), scheme=scheme(), factors=FACTORS).row(0, named=True)
    assert row["cohort"] == "below_scale_3mu"
    assert row["tax_per_kwh"] == pytest.approx(0.3)
    assert row["score"] == pytest.approx(HAND_BELOW_SCORE, abs=1e-6)


def test_flows_are_annualised_over_the_months_reported() -> None:
    # Six months reported: half the tax over half the months is the same 12 per mu.
    half = HAND_BELOW | {"months": 6, "tax_paid": 300_000.0, "kwh": 1_000_000.0}
    row = evaluate(year(half), scheme=scheme(), factors=FACTORS).row(0, named=True)
    assert row["tax_per_mu"] == pytest.approx(12.0)
    assert row["score"] == pytest.approx(HAND_BELOW_SCORE, abs=1e-6)


def test_cohorts_and_reasons_for_firms_not_rated() -> None:
    frame = evaluate(
        year(
            HAND_BELOW | {"land_mu": 2.5},
            HAND_BELOW | {"land_mu": None},
            HAND_BELOW | {"months": 0},
            HAND_BELOW | {"industry": "D4411"},
            HAND_BELOW | {"land_mu": 3.0},
        ),
        scheme=scheme(),
        factors=FACTORS,
        exempt=["D"],
    )
    assert frame["cohort"].to_list() == [
        "below_scale_small",
        "not_rated",
        "not_rated",
        "not_rated",
        "below_scale_3mu",
    ]
    assert frame["reason"].to_list() == [
        None,
        "no_land",
        "no_output_figures",
        "exempt_industry",
        None,
    ]
    assert frame.filter(pl.col("cohort") == "not_rated")["class"].null_count() == 3


def test_a_cohort_the_scheme_does_not_score_is_not_rated() -> None:
    frame = evaluate(year(HAND_ABOVE), scheme=scheme(items=BELOW), factors=FACTORS)
    assert frame.row(0, named=True)["reason"] == "cohort_not_in_scheme"


def test_twenty_firms_give_4_a_8_b_7_c_1_d() -> None:
    firms = [HAND_BELOW | {"tax_paid": 100_000.0 * (n + 1)} for n in range(20)]
    frame = evaluate(year(*firms), scheme=scheme(), factors=FACTORS)
    counts = dict(frame.group_by("class").len().rows())
    assert counts == {"A": 4, "B": 8, "C": 7, "D": 1}
    # The best tax is rank 1 and A; the lowest is rank 20 of 20 and D.
    best, worst = frame.row(19, named=True), frame.row(0, named=True)
    assert (best["rank"], best["class"], best["cohort_size"]) == (1, "A", 20)
    assert (worst["rank"], worst["class"]) == (20, "D")


def test_firms_tied_across_a_cut_share_the_better_class() -> None:
    # Ranks 4 and 5 tie: both are rank 4 (4 / 20 <= 0.2), so 5 firms are A and 7 are B.
    taxes = [100_000.0 * (n + 1) for n in range(20)]
    taxes[15] = taxes[16]  # the 5th best equals the 4th best
    frame = evaluate(
        year(*[HAND_BELOW | {"tax_paid": t} for t in taxes]), scheme=scheme(), factors=FACTORS
    )
    assert dict(frame.group_by("class").len().rows()) == {"A": 5, "B": 7, "C": 7, "D": 1}
    assert frame.filter(pl.col("tax_paid") == taxes[16])["rank"].to_list() == [4, 4]


def test_missing_emission_data_gets_the_cohort_average_item_score() -> None:
    firms = [
        HAND_ABOVE,
        HAND_ABOVE | {"emissions_t": 1.0},  # half the value: 8.285918
        HAND_ABOVE | {"emissions_t": None},
        HAND_ABOVE | {"emissions_t": 0.0},  # reported as 0 t: no usable data either
    ]
    frame = evaluate(year(*firms), scheme=scheme(), factors=FACTORS)
    scores = frame["score_va_per_t_emissions"].to_list()
    average = (16.571835 + 8.285918) / 2
    assert scores == pytest.approx([16.571835, 8.285918, average, average], abs=1e-6)
    assert frame["imputed"].to_list() == [False, False, True, True]
    assert frame["score"][2] == pytest.approx(HAND_ABOVE_SCORE - 16.571835 + average, abs=1e-6)


def test_other_missing_indicators_score_zero() -> None:
    firm = HAND_ABOVE | {"employees": None, "main_revenue": 0.0}
    row = evaluate(year(firm), scheme=scheme(), factors=FACTORS).row(0, named=True)
    assert row["va_per_employee"] is None and row["rnd_share"] is None
    assert row["score"] == pytest.approx(HAND_ABOVE_SCORE - 11.259096 - 5.0, abs=1e-6)


def test_a_cap_limits_value_over_benchmark() -> None:
    capped = tuple(
        Item(i.cohort, i.indicator, i.weight, i.benchmark, i.unit, cap=1.2) for i in BELOW
    )
    rows = evaluate(
        year(HAND_BELOW, HAND_BELOW | {"tax_paid": 0.0}),
        scheme=scheme(items=capped),
        factors=FACTORS,
    )
    # tax_per_mu 1.035 stays; tax_per_kwh 1.2755 is capped at 1.2: 51.754477 + 60.
    assert rows["score"][0] == pytest.approx(51.754477 + 60.0, abs=1e-6)
    assert rows["score"][1] == 0.0


def test_an_item_never_scores_below_zero() -> None:
    # Negative value added: the four value-added items score 0, tax and R&D stay.
    firm = HAND_ABOVE | {"value_added": -1_000_000.0}
    row = evaluate(year(firm), scheme=scheme(), factors=FACTORS).row(0, named=True)
    assert row["va_per_mu"] < 0
    assert row["score"] == pytest.approx(22.5 + 5.0)


def test_minmax_scores_within_the_cohort() -> None:
    firms = [HAND_BELOW | {"tax_paid": t} for t in (100_000.0, 300_000.0, 500_000.0)]
    frame = evaluate(year(*firms), scheme=scheme(method=Method.MINMAX), factors=FACTORS)
    # tax_per_mu and tax_per_kwh both rise linearly: 0, 0.5, 1 of each weight 50.
    assert frame["score"].to_list() == pytest.approx([0.0, 50.0, 100.0])


def test_score_bands() -> None:
    bands = scheme(classing=Classing.BANDS, cuts={"A": 110, "B": 90, "C": 60})
    firms = [HAND_BELOW | {"tax_paid": t} for t in (600_000.0, 480_000.0, 300_000.0, 100_000.0)]
    frame = evaluate(year(*firms), scheme=bands, factors=FACTORS)
    # scores: 115.53, 92.42, 57.76, 19.25
    assert frame["class"].to_list() == ["A", "B", "D", "D"]


@pytest.mark.parametrize(
    ("classing", "cuts"),
    [
        (Classing.PERCENTILE, {"A": 0.6, "B": 0.2}),
        (Classing.PERCENTILE, {"A": 0.2, "B": 1.5}),
        (Classing.PERCENTILE, {"E": 0.2}),
        (Classing.BANDS, {"A": 60, "B": 90}),
    ],
)
def test_cuts_that_cannot_be_applied_are_refused(
    classing: Classing, cuts: dict[str, float]
) -> None:
    with pytest.raises(InvalidSchemeError):
        scheme(classing=classing, cuts=cuts)
