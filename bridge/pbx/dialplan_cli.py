"""`hotline-bridge dialplan render|hours`: the shipped Asterisk configuration for a real site."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.cli_options import config_option, fail
from bridge.pbx.dialplan import (
    SITE_SOUNDS,
    SITE_TRUNK,
    render_office_hours,
    site_files,
    write_files,
)


@click.group("dialplan")
def dialplan() -> None:
    """The shipped dialplan, rendered for a real Asterisk (no sandbox needed)."""


@dialplan.command("render")
@config_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="folder to write into (e.g. /etc/asterisk)")
@click.option("--sounds", default=SITE_SOUNDS, show_default=True,
              help="the folder of the Mandarin prompts, as Asterisk sees it")
@click.option("--recordings", default=None,
              help="where Asterisk writes recordings and messages (default: [pbx] recordings_dir, "
                   "else /var/spool/asterisk/monitor)")
@click.option("--trunk", default=SITE_TRUNK, show_default=True,
              help="the PJSIP endpoint callbacks dial the caller through")
def render(config, out_dir: str, sounds: str, recordings: str | None,
           trunk: str) -> None:
    """Write the site's dialplan, queue, AMI account and office hours into OUT.

    The files: extensions.conf, extensions_globals.conf, extensions_hours.conf,
    queues.conf (its members are the operators signed in at the desk, added by the daemon) and
    manager.conf. manager.conf holds the AMI secret (from the variable [pbx.ami] secret_env) and is
    written with mode 0600. Then reload Asterisk (asterisk -rx "core reload")."""
    from bridge.pbx.sandbox import Tuning  # the shipped timings (the test bed shortens them)

    env_name = config.pbx.ami.secret_env
    try:
        secret = config.secret(env_name)
    except KeyError:
        fail(f"pbx.ami.secret_env: set the environment variable {env_name} to the AMI account's secret "
             "(manager.conf needs it)", status=2)
    files = site_files(config, Tuning(), ami_secret=secret, sounds=sounds,
                       recordings=recordings, trunk=trunk)
    for path in write_files(Path(out_dir), files):
        click.echo(str(path))


@dialplan.command("hours")
@config_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write extensions_hours.conf here (default: standard output)")
def hours(config, output: str | None) -> None:
    """Render only the office-hours include (extensions_hours.conf); regenerate it every December."""
    text = render_office_hours(config)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
