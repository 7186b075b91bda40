"""Campaign progress against the plan's own targets (`campaign.toml`), by town and for the
city, as of an ISO week: each figure is ``{target, measured, share_of_target, unit, basis,
as_of}`` plus the counts and ids it rests on.

What counts is described in `alerts.campaign_cases` (cases: eliminated, rectified, land)
and `alerts.campaign_metered` (energy freed, CO2, per mu, intensity). A town's share of an
additive target (firms, mu, tce, t CO2) is its contribution to the city's target; for a
level (per mu, intensity) it is the town's level against the city's target.

Scope: without ``town`` the city and every town; with ``town`` that town's figures only
and the list of targets, never the city's or another town's numbers (the city totals
would let a town work out the others' progress).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, timedelta
from math import fsum
from typing import Any, TypeVar

from alerts import campaign_targets
from alerts.campaign_cases import CountedFirm, LandFirm, counted_firms, land_firms, load_cases
from alerts.campaign_metered import (
    MONTHS,
    Window,
    current_window,
    energy_freed,
    intensity,
    per_mu,
)
from alerts.campaign_targets import CampaignConfig, Target
from alerts.carbon import GridFactor, NoGridFactorError, grid_factor
from alerts.energy import Factors, co2_tonnes
from alerts.errors import InvalidPeriodError
from meterhub.db import Conn
from meterhub.settings import Settings

Details = dict[str, Any]
#: A target's measure for one scope (a town, or None: the city): measured and details.
Measure = Callable[[str | None], tuple[float | None, Details]]


_T = TypeVar("_T", CountedFirm, LandFirm)


def _in(items: Iterable[_T], scope: str | None) -> list[_T]:
    return [i for i in items if scope is None or i.town == scope]


def _rows(rows: Iterable[dict[str, Any]], scope: str | None) -> list[dict[str, Any]]:
    return [r for r in rows if scope is None or r["town"] == scope]


def _round(value: float | None) -> float | None:
    """``value`` to 10 significant digits (a small share keeps its precision)."""
    return None if value is None else float(f"{value:.10g}")


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _round(v) if isinstance(v, float) else v for k, v in row.items()}


def figure(target: Target, measured: float | None, *, basis: str, as_of: date) -> Details:
    """One target's figure; a count stays an integer."""
    share = measured / target.value if measured is not None and target.value else None
    return {
        "target": target.value,
        "measured": measured if isinstance(measured, int) else _round(measured),
        "share_of_target": _round(share),
        "unit": target.unit,
        "basis": basis,
        "as_of": str(as_of),
    }


def _firms_measure(firms: list[CountedFirm], kind: str, year: int) -> Measure:
    def measure(scope: str | None) -> tuple[float | None, Details]:
        mine = [f for f in _in(firms, scope) if f.kind == kind]
        return len(mine), {
            "firm_ids": [f.firm_id for f in mine],
            "case_ids": sorted(c for f in mine for c in f.case_ids),
            "this_year": sum(1 for f in mine if f.resolved_week.year == year),
        }

    return measure


def _land_measure(land: list[LandFirm], year: int) -> Measure:
    def measure(scope: str | None) -> tuple[float | None, Details]:
        mine = _in(land, scope)
        return fsum(f.land_mu or 0.0 for f in mine), {
            "firm_ids": [f.firm_id for f in mine],
            "by_case": sum(1 for f in mine if f.by == "case"),
            "by_list": sum(1 for f in mine if f.by == "list"),
            "without_land": [f.firm_id for f in mine if f.land_mu is None],
            "this_year_mu": _round(fsum(f.land_mu or 0.0 for f in mine if f.on.year == year)),
        }

    return measure


def _energy_measure(freed: list[dict[str, Any]], excluded: list[dict[str, Any]]) -> Measure:
    def measure(scope: str | None) -> tuple[float | None, Details]:
        mine = _rows(freed, scope)
        return fsum(r["freed_tce"] for r in mine), {
            "firm_ids": [r["firm_id"] for r in mine],
            "baseline_tce": _round(fsum(r["baseline_tce"] for r in mine)),
            "current_tce": _round(fsum(r["current_tce"] for r in mine)),
            "firms_using_more": [r["firm_id"] for r in mine if r["freed_kwh"] < 0],
            "excluded": _rows(excluded, scope),
            "firms": [_rounded(r) for r in mine],
        }

    return measure


def _co2_measure(freed: list[dict[str, Any]], factor: GridFactor | None) -> Measure:
    def measure(scope: str | None) -> tuple[float | None, Details]:
        kwh = fsum(r["freed_kwh"] for r in _rows(freed, scope))
        co2 = co2_tonnes(kwh, factor.tco2_per_mwh) if factor is not None else None
        return co2, {
            "freed_kwh": _round(kwh),
            "factor": None if factor is None else _factor_dict(factor),
        }

    return measure


def _factor_dict(factor: GridFactor) -> Details:
    return {
        "year": factor.year,
        "region": factor.region,
        "kind": factor.kind,
        "tco2_per_mwh": factor.tco2_per_mwh,
        "source": factor.source,
    }


def _per_mu_level(
    rows: list[dict[str, Any]], amount: str, months: str
) -> tuple[float | None, Details]:
    complete = [r for r in rows if r[months] == MONTHS]
    land = fsum(r["land_mu"] for r in complete)
    total = fsum(r[amount] for r in complete) / 10_000
    return (total / land if land > 0 else None), {
        "firm_ids": [r["firm_id"] for r in complete],
        "land_mu": _round(land),
        "total_10k_yuan": _round(total),
        "incomplete_firms": sum(1 for r in rows if r[months] < MONTHS),
    }


def _per_mu_measure(
    now: list[dict[str, Any]], before: list[dict[str, Any]], amount: str
) -> Measure:
    months = f"{amount}_months"

    def measure(scope: str | None) -> tuple[float | None, Details]:
        value, details = _per_mu_level(_rows(now, scope), amount, months)
        previous, _ = _per_mu_level(_rows(before, scope), amount, months)
        return value, details | {"previous_12_months": _round(previous)}

    return measure


def _intensity_measure(
    now: list[dict[str, Any]], before: list[dict[str, Any]], factors: Factors
) -> Measure:
    def level(rows: list[dict[str, Any]]) -> tuple[float | None, Details]:
        tce = factors.tce(kwh=float(sum(r["kwh"] for r in rows)))
        output = sum(r["output"] for r in rows) / 10_000
        ratio = tce / output if output > 0 else None
        return ratio, {
            "tce": _round(tce),
            "output_10k_yuan": _round(output),
            "tce_per_10k_output": _round(ratio),
            "firm_months": sum(r["months"] for r in rows),
        }

    def measure(scope: str | None) -> tuple[float | None, Details]:
        (a, current), (b, previous) = level(_rows(now, scope)), level(_rows(before, scope))
        change = (a / b - 1) * 100 if a is not None and b else None
        return change, {"current": current, "previous": previous}

    return measure


def _bases(
    config: CampaignConfig, *, week: date, now: Window, factor: GridFactor | None
) -> dict[str, str]:
    start = config.plan.count_from
    problems = ", ".join(config.problems)
    cases = f"cases of {problems} resolved from {start} through the week of {week}"
    months = f"{now.start:%Y-%m}..{(now.end - timedelta(days=1)):%Y-%m}"
    kinds = "firm_month_features (electricity only)"
    grid = (
        f"the {factor.kind} grid factor of {factor.region} for {factor.year} "
        f"({factor.tco2_per_mwh} t CO2/MWh, the latest not after {week.year})"
        if factor is not None
        else f"no grid factor up to {week.year}: not measured"
    )
    return {
        "eliminated": f"firms with {cases} on the basis closed_down",
        "rectified": f"other firms with {cases}"
        + (", none of them still open" if config.require_no_open_case else ""),
        "land_rectified": f"land_mu of firms whose {', '.join(config.land_problems)} case "
        f"resolved or whose {', '.join(config.land_lists)} membership ended from {start}",
        "energy_freed": f"eliminated and rectified firms: tce ({config.tce_basis.value}) of "
        f"the 12 months before their first case opened minus {months}, from {kinds}; "
        "a firm using more counts negative",
        "co2_cut": f"the electricity of the energy freed (all of it) x {grid}",
        "tax_per_mu": f"tax paid {months} over land_mu, above-scale firms reporting all 12 months",
        "value_added_per_mu": f"value added {months} over land_mu, above-scale firms "
        "reporting all 12 months",
        "intensity_change": f"tce ({config.tce_basis.value}) per 10k yuan of output value "
        f"{months} against the 12 months before, over firm-months with both {kinds} and "
        "reported output; a proxy for the plan's energy per unit of GDP",
    }


async def progress(
    conn: Conn,
    *,
    week: date,
    town: str | None = None,
    settings: Settings,
    config: CampaignConfig | None = None,
) -> dict[str, Any]:
    """The campaign's progress as of the ISO week starting ``week`` (see the module)."""
    if week.isoweekday() != 1:
        raise InvalidPeriodError(f"week must be a Monday, not {week}")
    config = config or campaign_targets.load()
    week_end, now = week + timedelta(days=6), current_window(week)
    cases = await load_cases(conn, week=week, config=config)
    firms, waiting = counted_firms(cases, week=week, config=config)
    land = await land_firms(conn, cases=cases, week=week, config=config)
    freed, excluded = await energy_freed(
        conn, firms=firms, week=week, config=config, settings=settings
    )
    try:
        factor: GridFactor | None = await grid_factor(
            conn, region=settings.grid_factor_region, kind=settings.grid_factor_kind, year=week.year
        )
    except NoGridFactorError:
        factor = None
    mu_now = await per_mu(conn, window=now)
    mu_before = await per_mu(conn, window=now.before())
    measures: dict[str, Measure] = {
        "eliminated": _firms_measure(firms, "eliminated", week.year),
        "rectified": _firms_measure(firms, "rectified", week.year),
        "land_rectified": _land_measure(land, week.year),
        "energy_freed": _energy_measure(freed, excluded),
        "co2_cut": _co2_measure(freed, factor),
        "tax_per_mu": _per_mu_measure(mu_now, mu_before, "tax"),
        "value_added_per_mu": _per_mu_measure(mu_now, mu_before, "va"),
        "intensity_change": _intensity_measure(
            await intensity(conn, window=now, config=config),
            await intensity(conn, window=now.before(), config=config),
            Factors.of(settings, config.tce_basis),
        ),
    }
    bases = _bases(config, week=week, now=now, factor=factor)
    metered_as_of = now.end - timedelta(days=1)

    def figures(scope: str | None) -> dict[str, Details]:
        out = {}
        for code in campaign_targets.CODES:
            measured, details = measures[code](scope)
            as_of = week_end if code in _CASE_TARGETS else metered_as_of
            target = config.targets[code]
            out[code] = figure(target, measured, basis=bases[code], as_of=as_of) | details
        out["rectified"]["waiting_for_open_cases"] = [
            f for f, t in waiting if scope is None or t == scope
        ]
        return out

    names = [town] if town else [r["name"] for r in await conn.fetch(_TOWNS)]
    plan = config.plan
    return {
        "week": str(week),
        "as_of": str(week_end),
        "scope": town or "city",
        "plan": {
            "title": plan.title,
            "status": plan.status,
            "source": plan.source,
            "start": str(plan.start),
            "end": str(plan.end),
            "count_from": str(plan.count_from),
        },
        "targets": [config.targets[c].as_dict() for c in campaign_targets.CODES],
        "city": None if town else figures(None),
        "towns": [{"town": name, "figures": figures(name)} for name in names],
    }


_CASE_TARGETS = frozenset({"eliminated", "rectified", "land_rectified"})
_TOWNS = "SELECT name FROM towns ORDER BY sort_order"
