"""Logs: JSON lines off a terminal, call/case ids carried, secrets masked."""
from __future__ import annotations

import io
import json
import logging

import structlog

from bridge.config import LoggingConfig
from bridge.logs import configure_logging


def test_json_lines_with_ids_and_masked_secrets():
    stream = io.StringIO()  # not a terminal
    configure_logging(LoggingConfig(format="auto", level="info"), stream=stream)
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(linkedid="1700000000.12"):
        log.info("call.ended", case_number="96811-2026-000001", ami_secret="hunter2", password="pw")
    log.debug("hidden at info level")
    logging.getLogger("some.library").info("from the standard library")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["event"] == "call.ended"
    assert lines[0]["linkedid"] == "1700000000.12"
    assert lines[0]["case_number"] == "96811-2026-000001"
    assert lines[0]["ami_secret"] == "***" and lines[0]["password"] == "***"
    assert "hunter2" not in stream.getvalue()
    assert len(lines) == 2 and lines[1]["event"] == "from the standard library"


def test_console_format_is_not_json():
    stream = io.StringIO()
    configure_logging(LoggingConfig(format="console"), stream=stream)
    structlog.get_logger("test").warning("pbx.down", reason="refused")
    text = stream.getvalue()
    assert "pbx.down" in text and not text.lstrip().startswith("{")
