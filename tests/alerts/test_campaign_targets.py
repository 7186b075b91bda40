"""The campaign file: every target with its value, unit, quote and source; the counted
problems are notice problems; a malformed file is refused by class."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from alerts import campaign_targets
from alerts.campaign_targets import CODES, CampaignConfigError, parse
from alerts.energy import Basis
from alerts.notices import config as notice_config

#: The plan's 3-year targets (二、实施目标) in the unit the service measures them in.
PLAN = {
    "eliminated": (45, "firms", "45家"),
    "rectified": (300, "firms", "300家"),
    "land_rectified": (9000, "mu", "9000亩"),
    "energy_freed": (100_000, "tce", "10万吨标准煤"),
    "co2_cut": (200_000, "t CO2", "20万吨"),
    "tax_per_mu": (25, "10k yuan/mu", "25万元"),
    "value_added_per_mu": (170, "10k yuan/mu", "170万元"),
    "intensity_change": (-3.4, "%/year", "3.4%"),
}


def raw() -> dict[str, Any]:
    return tomllib.loads(campaign_targets.DEFAULT_FILE.read_text(encoding="utf-8"))


def test_every_target_has_value_unit_quote_and_source() -> None:
    config = campaign_targets.load()
    assert set(config.targets) == set(CODES) == set(PLAN)
    for code, target in config.targets.items():
        value, unit, words = PLAN[code]
        assert (target.value, target.unit) == (value, unit), code
        assert words in target.quote, code
        assert target.source and target.zh and target.en
    assert config.plan.start.year == 2021 and config.plan.end.year == 2023
    assert config.tce_basis is Basis.CALORIFIC


def test_counted_problems_are_notice_problems() -> None:
    config = campaign_targets.load()
    problems = set(notice_config.load().problems)
    assert set(config.problems) <= problems and set(config.land_problems) <= problems
    assert "energy_anomaly" not in config.problems  # a signal, not a rectification


@pytest.mark.parametrize("field", ["value", "unit", "source", "quote"])
def test_a_target_without_a_field_is_refused(field: str) -> None:
    data = raw()
    del data["targets"]["rectified"][field]
    with pytest.raises(CampaignConfigError, match="rectified"):
        parse(data)


def test_unknown_or_missing_targets_are_refused() -> None:
    data = raw()
    data["targets"]["gdp"] = data["targets"].pop("tax_per_mu")
    with pytest.raises(CampaignConfigError) as refused:
        parse(data)
    assert refused.value.extra == {"unknown": ["gdp"], "missing": ["tax_per_mu"]}


def test_an_unknown_basis_is_refused() -> None:
    data = raw()
    data["counting"]["tce_basis"] = "lunar"
    with pytest.raises(CampaignConfigError):
        parse(data)
