"""The notice's configuration (`notice.toml`, or ``MHUB_NOTICE_FILE``): numbering, wording,
problem types with their rules or lists, deadlines, colours, relapse and closing rules."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from alerts.errors import AlertsError

DEFAULT_FILE = Path(__file__).with_name("notice.toml")


class NoticeConfigError(AlertsError):
    code = "notice_config_invalid"


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    zh: str
    en: str
    action: str
    deadline_weeks: int
    rules: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NoticeConfig:
    number: str
    title: str
    issuing_unit: str
    relapse_weeks: int
    clean_weeks_to_resolve: int
    closed_kwh_per_week: float
    blue_days: int
    yellow_days: int
    problems: Mapping[str, Problem]

    def number_of(self, week: date) -> str:
        year, number, _ = week.isocalendar()
        return self.number.format(year=year, week=number)

    def problem_of_rule(self, rule: str) -> str | None:
        for problem in self.problems.values():
            if rule in problem.rules:
                return problem.code
        return None

    def problem_of_list(self, name: str) -> str | None:
        for problem in self.problems.values():
            if name in problem.lists:
                return problem.code
        return None


def _problem(code: str, raw: Mapping[str, Any]) -> Problem:
    try:
        return Problem(
            code=code,
            zh=str(raw["zh"]),
            en=str(raw["en"]),
            action=str(raw["action"]),
            deadline_weeks=int(raw["deadline_weeks"]),
            rules=tuple(raw.get("rules", ())),
            lists=tuple(raw.get("lists", ())),
        )
    except KeyError as exc:
        raise NoticeConfigError(f"problem {code!r} lacks {exc.args[0]!r}") from None


def load(path: Path | None = None) -> NoticeConfig:
    path = path or DEFAULT_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return NoticeConfig(
            number=str(raw["number"]),
            title=str(raw["title"]),
            issuing_unit=str(raw["issuing_unit"]),
            relapse_weeks=int(raw["relapse_weeks"]),
            clean_weeks_to_resolve=int(raw["clean_weeks_to_resolve"]),
            closed_kwh_per_week=float(raw["closed_kwh_per_week"]),
            blue_days=int(raw["colours"]["blue_days"]),
            yellow_days=int(raw["colours"]["yellow_days"]),
            problems={c: _problem(c, p) for c, p in raw["problems"].items()},
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise NoticeConfigError(f"cannot read the notice file {path}: {exc!r}") from exc
