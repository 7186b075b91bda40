"""Structured logging: JSON lines in production, readable console output in development.

No secret reaches a log: tracebacks are plain text without local variables (rich's
``show_locals`` printed request headers and keys, and took seconds per traceback), bounded in
length, and every value passes through `meterhub.redact` before it is rendered.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import EventDict, WrappedLogger

from meterhub.redact import MAX_TRACEBACK_CHARS, MAX_VALUE_CHARS, redact_value
from meterhub.settings import Settings, get_settings

_LIMITS = {"exception": MAX_TRACEBACK_CHARS, "stack": MAX_TRACEBACK_CHARS}


def redact_secrets(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secrets in every value and bound its length."""
    return {
        key: redact_value(value, limit=_LIMITS.get(key, MAX_VALUE_CHARS))
        for key, value in event_dict.items()
    }


def _renderer(settings: Settings) -> structlog.types.Processor:
    if settings.log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(
        colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(settings: Settings | None = None) -> None:
    """Route structlog and stdlib logging through one processor chain."""
    settings = settings or get_settings()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # exc_info -> a plain ``exception`` text (Python's own formatting, no locals)
                # for both renderers, so that the redaction below sees the traceback too.
                structlog.processors.format_exc_info,
                redact_secrets,
                _renderer(settings),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


def _safe_defaults() -> None:
    """Before `configure_logging` (tests, library use), structlog's own defaults apply, whose
    console renderer prints tracebacks with local variables: replace that renderer."""
    if structlog.is_configured():
        return
    defaults = structlog.get_config()["processors"][:-1]  # all but the renderer
    structlog.configure(
        processors=[
            *defaults,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
        ]
    )


_safe_defaults()
