"""The rules file (`alerts/rules.toml`, or ``MHUB_RULES_FILE``): every rule's family,
severity, hysteresis, thresholds and texts. Rules are data; the code only knows how to
evaluate each rule code."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.errors import RulebookError

DEFAULT_RULES = Path(__file__).with_name("rules.toml")

#: The rule codes this version evaluates; the file must describe each of them.
CODES = (
    "data_incomplete",
    "terminal_offline",
    "meter_events",
    "suspected_stoppage",
    "suspected_cutback",
    "energy_surge",
    "baseline_excess",
    "baseline_drift",
    "intensity_peers",
    "intensity_rising",
    "above_city_path",
    "two_high",
    "monitored_list",
    "d_class_two_years",
    "idle_load",
)
SEVERITIES = ("info", "low", "medium", "high")


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    family: str
    severity: str
    close_after_weeks: int
    zh: str
    en: str
    enabled: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            raise RulebookError(f"rule {self.code!r} has no parameter {name!r}") from None

    def text(self, evidence: Mapping[str, Any], *, lang: str = "zh") -> str:
        """The rule's sentence with the evidence filled in (missing fields stay as ``?``)."""
        template = self.zh if lang == "zh" else self.en
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        return template.format(**{k: evidence.get(k, "?") for k in fields})


@dataclass(frozen=True, slots=True)
class Rulebook:
    rules: Mapping[str, Rule]

    def __getitem__(self, code: str) -> Rule:
        return self.rules[code]

    def enabled(self, code: str) -> bool:
        return self.rules[code].enabled


def _rule(code: str, raw: Mapping[str, Any]) -> Rule:
    try:
        rule = Rule(
            code=code,
            family=str(raw["family"]),
            severity=str(raw["severity"]),
            close_after_weeks=int(raw["close_after_weeks"]),
            zh=str(raw["zh"]),
            en=str(raw["en"]),
            enabled=bool(raw.get("enabled", True)),
            params=dict(raw.get("params", {})),
        )
    except KeyError as exc:
        raise RulebookError(f"rule {code!r} lacks {exc.args[0]!r}") from None
    if rule.severity not in SEVERITIES:
        raise RulebookError(f"rule {code!r}: severity must be one of {', '.join(SEVERITIES)}")
    if rule.close_after_weeks < 1:
        raise RulebookError(f"rule {code!r}: close_after_weeks must be at least 1")
    return rule


def load(path: Path | None = None) -> Rulebook:
    """The rules of ``path`` (default: the shipped file), checked against `CODES`."""
    path = path or DEFAULT_RULES
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RulebookError(f"cannot read the rules file {path}: {exc}") from exc
    unknown = sorted(set(raw) - set(CODES))
    missing = sorted(set(CODES) - set(raw))
    if unknown or missing:
        raise RulebookError(
            f"rules file {path}: unknown rules {unknown or 'none'}, missing {missing or 'none'}"
        )
    return Rulebook({code: _rule(code, raw[code]) for code in CODES})
