"""The campaign's targets and counting rules (`campaign.toml`): the plan's own wording and
source for every target, which problem types are high-energy, low-efficiency ones, and the
standard-coal basis of the energy freed."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from alerts.energy import Basis
from alerts.errors import AlertsError

DEFAULT_FILE = Path(__file__).with_name("campaign.toml")
#: Every target the service measures, in the order it reports them.
CODES = (
    "eliminated",
    "rectified",
    "land_rectified",
    "energy_freed",
    "co2_cut",
    "tax_per_mu",
    "value_added_per_mu",
    "intensity_change",
)


class CampaignConfigError(AlertsError):
    """The campaign file is malformed: a target without value, unit or source, or an
    unknown target."""

    code = "campaign_config_invalid"


@dataclass(frozen=True, slots=True)
class Target:
    code: str
    zh: str
    en: str
    value: int | float  # as the file gives it: a count stays an integer
    unit: str
    quote: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "zh": self.zh,
            "en": self.en,
            "target": self.value,
            "unit": self.unit,
            "quote": self.quote,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    title: str
    status: str
    source: str
    start: date
    end: date
    count_from: date


@dataclass(frozen=True, slots=True)
class CampaignConfig:
    plan: Plan
    problems: tuple[str, ...]
    require_no_open_case: bool
    land_problems: tuple[str, ...]
    land_lists: tuple[str, ...]
    tce_basis: Basis
    min_month_completeness: float
    targets: Mapping[str, Target]


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CampaignConfigError(f"{where} lacks {key!r}")
    return value


def _target(code: str, raw: Mapping[str, Any]) -> Target:
    where = f"target {code!r}"
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CampaignConfigError(f"{where} lacks a numeric 'value'")
    return Target(
        code=code,
        zh=_text(raw, "zh", where),
        en=_text(raw, "en", where),
        value=value,
        unit=_text(raw, "unit", where),
        quote=_text(raw, "quote", where),
        source=_text(raw, "source", where),
    )


def _date(raw: Mapping[str, Any], key: str) -> date:
    value = raw.get(key)
    if not isinstance(value, date):
        raise CampaignConfigError(f"[plan] lacks the date {key!r}")
    return value


def parse(raw: Mapping[str, Any]) -> CampaignConfig:
    """The configuration in ``raw`` (a parsed campaign file)."""
    try:
        plan, counting, targets = raw["plan"], raw["counting"], raw["targets"]
    except KeyError as exc:
        raise CampaignConfigError(f"the campaign file lacks [{exc.args[0]}]") from None
    unknown = set(targets) - set(CODES)
    missing = set(CODES) - set(targets)
    if unknown or missing:
        raise CampaignConfigError(
            f"targets must be exactly {', '.join(CODES)}",
            unknown=sorted(unknown),
            missing=sorted(missing),
        )
    try:
        return CampaignConfig(
            plan=Plan(
                title=_text(plan, "title", "[plan]"),
                status=str(plan.get("status", "")),
                source=_text(plan, "source", "[plan]"),
                start=_date(plan, "start"),
                end=_date(plan, "end"),
                count_from=_date(plan, "count_from"),
            ),
            problems=tuple(str(p) for p in counting["problems"]),
            require_no_open_case=bool(counting["require_no_open_case"]),
            land_problems=tuple(str(p) for p in counting["land_problems"]),
            land_lists=tuple(str(p) for p in counting["land_lists"]),
            tce_basis=Basis(counting["tce_basis"]),
            min_month_completeness=float(counting["min_month_completeness"]),
            targets={code: _target(code, targets[code]) for code in CODES},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CampaignConfigError(f"[counting] is incomplete or invalid: {exc!r}") from None


def load(path: Path | None = None) -> CampaignConfig:
    path = path or DEFAULT_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CampaignConfigError(f"cannot read the campaign file {path}: {exc!r}") from exc
    return parse(raw)
