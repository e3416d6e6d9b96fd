"""What every `hotline-bridge` command shares: the -c CONFIG option and its loading."""
from __future__ import annotations

import functools
import sys
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
