"""The `hotline-bridge` command. Each capability brings its own command group."""
from __future__ import annotations

import os
import sys

import click

from bridge.cli_options import config_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hotline-bridge")
def main() -> None:
    """hotline-bridge: the 96811 hotline's bridge between the PBX and the forum."""


@main.command()
@config_option
def run(config) -> None:
    """Run the daemon (web pages, API, PBX and forum links, scheduler)."""
    from bridge.daemon import DaemonError, run_daemon

    try:
        run_daemon(config)
    except DaemonError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        _forget_closed_streams()


def _forget_closed_streams() -> None:
    """A clean stop exits 0 even if whoever read our output has gone (the final flush would fail)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())


@main.command("check-config")
@config_option
def check_config(config) -> None:
    """Validate the configuration; print every problem (exit status 2) or "ok"."""
    click.echo(f"ok: configuration is valid (database {config.database_url.split(':', 1)[0]}, "
               f"pbx {config.pbx.backend}, forum {config.forum.backend})")


def _attach_groups() -> None:
    from bridge.accounts.cli import token, user
    from bridge.db.cli import db
    from bridge.departments.cli import departments
    from bridge.pbx.dialplan_cli import dialplan
    from bridge.pbx.sandbox_cli import sandbox

    for group in (db, user, token, departments, sandbox, dialplan):
        main.add_command(group)


_attach_groups()
