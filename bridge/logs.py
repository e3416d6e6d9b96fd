"""Structured logs (structlog): readable on a terminal, JSON lines otherwise (journald).

Lines about a call or a case carry ``linkedid`` / ``case_number``; bind them with
``structlog.contextvars.bind_contextvars`` or pass them as keys.  Secrets are never
logged: keys that look secret are masked before rendering.
"""
from __future__ import annotations

import logging
import sys

import structlog

from bridge.config import LoggingConfig

_SECRET_KEYS = ("secret", "password", "token", "api_key", "auth")


def _mask_secrets(_logger, _name, event_dict: dict) -> dict:
    for key in list(event_dict):
        if any(word in key.lower() for word in _SECRET_KEYS) and not key.endswith(("_env", "_id", "_prefix")):
            event_dict[key] = "***"
    return event_dict


class _SturdyStream:
    """A log stream whose reader may go away (a closed pipe): logging must never stop the daemon."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ValueError):  # reader gone / stream closed: drop the line
            return 0

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def isatty(self) -> bool:
        return self._stream.isatty()


def configure_logging(config: LoggingConfig, *, stream=None) -> None:
    stream = _SturdyStream(stream or sys.stderr)
    as_json = config.format == "json" or (config.format == "auto" and not stream.isatty())
    level = getattr(logging, config.level.upper())
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries using the standard logging module (uvicorn, alembic, apscheduler) go the same way.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every plugin it loads at INFO; only its warnings matter in our logs.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
