"""The printable notice in Chinese: one HTML page with print CSS for A4, the cover and the
city summary first, then one town per page with a table of its items and a trend line per
item as inline SVG. Self-contained (no script, no external resource); the same document
gives the same bytes."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from alerts.notices.exports.scope import town_part
from alerts.notices.exports.sparkline import sparkline

TEMPLATES = Path(__file__).with_name("templates")
DASH = "—"
SCALE_ZH = {True: "规上", False: "规下"}


def number(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def percent(value: float | None, *, signed: bool = True) -> str:
    """A share (0.123) as text: ``+12.3%``."""
    if value is None:
        return DASH
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def moment(value: str | None) -> str:
    """An ISO time as local wall-clock text: ``2026-11-30 00:00``."""
    if not value:
        return DASH
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=number, percent=percent, moment=moment)
    env.globals.update(sparkline=sparkline, DASH=DASH, SCALE_ZH=SCALE_ZH)
    return env


def render_html(document: dict[str, Any], town: str | None = None) -> bytes:
    """The notice (or ``town``'s part of it) as UTF-8 HTML."""
    part = town_part(document, town)
    text = environment().get_template("notice.html.j2").render(doc=part, town=town)
    return text.encode("utf-8")
