"""What every `hotline-bridge` command shares: the -c CONFIG option and its loading."""
from __future__ import annotations

import contextlib
import functools
import sys
import unicodedata
from datetime import datetime
from typing import Callable

import click

from bridge.config import Config, ConfigError, load_config, resolve_config_path


def config_option(command: Callable) -> Callable:
    """Add ``-c/--config`` to a command and pass it the validated ``Config`` as ``config``.

    A bad configuration prints every problem and exits with status 2.
    """

    @click.option("-c", "--config", "config_path", metavar="CONFIG", default=None,
                  help="configuration file (default: $HOTLINE_BRIDGE_CONFIG or config.toml)")
    @functools.wraps(command)
    def wrapper(*args, config_path: str | None, **kwargs):
        path = resolve_config_path(config_path)
        try:
            config = load_config(path)
        except ConfigError as exc:
            click.echo(exc.render(), err=True)
            sys.exit(2)
        from bridge.logs import configure_logging

        configure_logging(config.logging)
        return command(*args, config=config, **kwargs)

    return wrapper


def fail(message: str, status: int = 1) -> None:
    """Print a message that says what to fix, and exit."""
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


@contextlib.contextmanager
def open_database(config: Config):
    """The database of ``config`` for one command: ``with open_database(config) as db:``."""
    from bridge.db.engine import Database

    db = Database(config.database_url)
    try:
        yield db
    finally:
        db.dispose()


def display_width(text: str) -> int:
    """Terminal columns taken by ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table aligned for terminals, CJK-aware."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        widths = [max(w, display_width(cell)) for w, cell in zip(widths, row)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell + " " * (w - display_width(cell)) for cell, w in zip(cells, widths)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def local_date(config: Config, moment: datetime | None) -> str:
    return moment.astimezone(config.site.zone).strftime("%Y-%m-%d") if moment else ""
