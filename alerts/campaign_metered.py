"""The campaign's metered figures: energy freed by the firms counted, per-mu tax and value
added of above-scale industry, and the city's energy intensity year on year.

* Months: "now" is the last 12 whole months before the week (the rolling 12 months of
  `alerts.accounting.periods`); a firm's baseline is the 12 whole months before the month
  its first counted case opened. kWh come from ``firm_month_features`` (electricity only:
  gas and water are not in it); a month under ``min_month_completeness`` is missing, never
  zero.
* Energy freed = baseline tce - current tce per firm, on the configured basis (the other
  basis is reported too). A firm that uses more now counts negative, so the city's figure
  is honest. A firm needs all 12 baseline months; a rectified firm needs all 12 current
  months too, while a closed-down firm's missing months count as 0 kWh (its case closed
  on a metered check of about 0 kWh). Firms without them are listed as excluded.
* Per mu: over above-scale firms with land and all 12 months of the figure reported.
* Intensity: tce per 10k yuan of output value over the firm-months that have both metered
  kWh and reported output (> 0), the last 12 months against the 12 before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from alerts.accounting import periods
from alerts.campaign_cases import CountedFirm
from alerts.campaign_targets import CampaignConfig
from alerts.energy import Basis, Factors
from meterhub.db import Conn
from meterhub.settings import Settings

MONTHS = 12

_MONTHS = """
SELECT firm_id, month, kwh FROM firm_month_features
WHERE firm_id = ANY($1::bigint[]) AND month >= $2 AND month < $3
  AND expected > 0 AND intervals::float8 / expected >= $4
"""
_PER_MU = """
SELECT f.id AS firm_id, f.town, f.land_mu::float8 AS land_mu,
       count(o.tax_paid) AS tax_months, sum(o.tax_paid)::float8 AS tax,
       count(o.value_added) AS va_months, sum(o.value_added)::float8 AS va
FROM firms f JOIN output_figures o ON o.firm_id = f.id AND o.month >= $1 AND o.month < $2
WHERE f.above_scale AND f.land_mu > 0
GROUP BY f.id, f.town, f.land_mu
"""
_INTENSITY = """
SELECT f.town, sum(m.kwh) AS kwh, sum(o.output_value)::float8 AS output, count(*) AS months
FROM firm_month_features m
JOIN output_figures o ON o.firm_id = m.firm_id AND o.month = m.month AND o.output_value > 0
JOIN firms f ON f.id = m.firm_id
WHERE m.month >= $1 AND m.month < $2 AND m.expected > 0
  AND m.intervals::float8 / m.expected >= $3
GROUP BY f.town
"""


@dataclass(frozen=True, slots=True)
class Window:
    start: date
    end: date  # exclusive

    def before(self) -> Window:
        return Window(_shift(self.start, -MONTHS), _shift(self.end, -MONTHS))

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}


def _shift(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def current_window(week: date) -> Window:
    rolling = next(p for p in periods(week) if p.name == "rolling_12_months")
    return Window(rolling.start, rolling.end)


def baseline_window(first_opened: date) -> Window:
    month = first_opened.replace(day=1)
    return Window(_shift(month, -MONTHS), month)


def _kwh(rows: list[dict[str, Any]], window: Window) -> tuple[float, int]:
    inside = [r["kwh"] for r in rows if window.start <= r["month"] < window.end]
    return float(sum(inside)), len(inside)


async def energy_freed(
    conn: Conn,
    *,
    firms: list[CountedFirm],
    week: date,
    config: CampaignConfig,
    settings: Settings,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per counted firm: baseline and current kWh and tce and the tce freed; and the firms
    excluded, each with its reason."""
    now = current_window(week)
    if not firms:
        return [], []
    first = min(baseline_window(f.first_opened).start for f in firms)
    rows = await conn.fetch(
        _MONTHS, [f.firm_id for f in firms], first, now.end, config.min_month_completeness
    )
    months: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        months.setdefault(row["firm_id"], []).append(dict(row))
    measured = Factors.of(settings, config.tce_basis)
    other_basis = Basis.EQUAL_VALUE if config.tce_basis is Basis.CALORIFIC else Basis.CALORIFIC
    other = Factors.of(settings, other_basis)
    out, excluded = [], []
    for firm in firms:
        base = baseline_window(firm.first_opened)
        base_kwh, base_months = _kwh(months.get(firm.firm_id, []), base)
        now_kwh, now_months = _kwh(months.get(firm.firm_id, []), now)
        reason = None
        if base_months < MONTHS:
            reason = f"baseline has {base_months} of {MONTHS} complete months"
        elif now_months < MONTHS and firm.kind == "rectified":
            reason = f"the last {MONTHS} months have {now_months} complete months"
        if reason is not None:
            excluded.append({"firm_id": firm.firm_id, "town": firm.town, "reason": reason})
            continue
        freed_kwh = base_kwh - now_kwh
        out.append(
            {
                "firm_id": firm.firm_id,
                "town": firm.town,
                "kind": firm.kind,
                "baseline": base.as_dict(),
                "baseline_kwh": base_kwh,
                "current_kwh": now_kwh,
                "current_months": now_months,
                "baseline_tce": measured.tce(kwh=base_kwh),
                "current_tce": measured.tce(kwh=now_kwh),
                "freed_kwh": freed_kwh,
                "freed_tce": measured.tce(kwh=freed_kwh),
                f"freed_tce_{other_basis.value}": other.tce(kwh=freed_kwh),
            }
        )
    return out, excluded


async def per_mu(conn: Conn, *, window: Window) -> list[dict[str, Any]]:
    """Above-scale firms with land and their tax and value added over ``window``."""
    return [dict(r) for r in await conn.fetch(_PER_MU, window.start, window.end)]


async def intensity(conn: Conn, *, window: Window, config: CampaignConfig) -> list[dict[str, Any]]:
    """kWh and output by town over the matched firm-months of ``window``."""
    rows = await conn.fetch(_INTENSITY, window.start, window.end, config.min_month_completeness)
    return [dict(r) for r in rows]
