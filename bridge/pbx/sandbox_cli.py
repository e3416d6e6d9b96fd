"""`hotline-bridge sandbox start|stop|status|phones|eventfilters`: the loopback Asterisk test bed.

Each command takes ``-c/--config`` itself (default: $HOTLINE_BRIDGE_CONFIG or config.toml),
so the group works attached to the root CLI or on its own.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from bridge.config import Config, ConfigError, load_config, resolve_config_path
from bridge.pbx import sandbox_phones
from bridge.pbx.sandbox import Sandbox, SandboxError
from bridge.pbx.subscription import manager_eventfilters

config_option = click.option(
    "-c", "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="config.toml (default: $HOTLINE_BRIDGE_CONFIG or ./config.toml)")


def _load(ctx: click.Context, config_path: str | None) -> Config:
    if config_path is None and isinstance(ctx.obj, Config):
        return ctx.obj
    try:
        return load_config(resolve_config_path(config_path))
    except ConfigError as exc:
        click.echo(exc.render(), err=True)
        ctx.exit(2)


def _print_status(state: dict) -> None:
    for name, (host, port) in state["addresses"].items():
        click.echo(f"{name}={host}:{port}")


@click.group("sandbox")
def sandbox() -> None:
    """The loopback Asterisk test bed (real Asterisk 22 with the shipped dialplan)."""


@sandbox.command("start")
@config_option
@click.pass_context
def start(ctx: click.Context, config_path: str | None) -> None:
    """Provision the Asterisk root if needed, render the configuration, start Asterisk."""
    config = _load(ctx, config_path)
    box = Sandbox(config)
    try:
        state = box.start()
    except SandboxError as exc:
        click.echo(f"sandbox: {exc}", err=True)
        ctx.exit(1)
    _print_status(state)
    paths = box.paths()
    click.echo(f"# recordings: {paths['recordings']}", err=True)
    click.echo(f"# cdr database: {paths['cdr_db']}", err=True)


@sandbox.command("stop")
@config_option
@click.pass_context
def stop(ctx: click.Context, config_path: str | None) -> None:
    """Stop the sandbox Asterisk (nothing to do when it is not running)."""
    config = _load(ctx, config_path)
    try:
        was_running = Sandbox(config).stop()
    except SandboxError as exc:
        click.echo(f"sandbox: {exc}", err=True)
        ctx.exit(1)
    if not was_running:
        click.echo("sandbox: not running", err=True)


@sandbox.command("status")
@config_option
@click.pass_context
def status(ctx: click.Context, config_path: str | None) -> None:
    """One `name=host:port` line per address (trunk, carrier, ami, phone.EXT).

    Whether Asterisk is running goes to standard error ("sandbox: running, pid N" or
    "sandbox: not running"); the exit status is 0 either way."""
    config = _load(ctx, config_path)
    box = Sandbox(config)
    state = box.status()
    _print_status(state)
    click.echo(f"sandbox: running, pid {state['pid']}" if state["running"] else "sandbox: not running",
               err=True)


@sandbox.command("phones")
@config_option
@click.pass_context
def phones(ctx: click.Context, config_path: str | None) -> None:
    """Run SIPp phones that answer every call: each desk phone and the carrier's far end (the
    "caller" of a callback).  In the foreground until Ctrl-C; the sandbox must be running."""
    config = _load(ctx, config_path)
    state = Sandbox(config).status()
    if not state["running"]:
        click.echo("sandbox: not running; start it first (`hotline-bridge sandbox start` or scripts/run)", err=True)
        ctx.exit(1)
    answering = sandbox_phones.phones_of(state["addresses"])
    try:
        running = sandbox_phones.start(answering, Path(config.sandbox.state_dir) / "phones")
    except sandbox_phones.PhonesError as exc:
        click.echo(f"sandbox phones: {exc}", err=True)
        ctx.exit(1)
    for phone in answering:
        click.echo(f"{phone.name}={phone.host}:{phone.port} answers")
    click.echo("# Ctrl-C stops the phones", err=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a `kill` stops the phones too, not only Ctrl-C
    try:
        while all(process.poll() is None for process in running):
            time.sleep(0.5)
        click.echo("sandbox phones: a phone stopped; stopping the others", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox_phones.stop(running)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@sandbox.command("eventfilters")
def eventfilters() -> None:
    """Print the eventfilter lines for the daemon's AMI account in a real site's manager.conf."""
    click.echo("\n".join(manager_eventfilters()))
