"""`hotline-bridge db ...`: schema migrations from the command line."""
from __future__ import annotations

import click

from bridge.cli_options import config_option, fail
from bridge.config import Config


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@click.group()
def db() -> None:
    """Database schema: upgrade, current revision."""


@db.command()
@config_option
def upgrade(config: Config) -> None:
    """Upgrade the database schema to the newest revision (does nothing if it is there)."""
    from bridge.db import migrate

    url = config.database_url
    try:
        before = migrate.current_revision(url)
        after = migrate.upgrade(url)
    except Exception as exc:  # the message names the database, never its password
        fail(f"cannot upgrade {_safe_url(url)}: {exc}")
        return
    click.echo(f"database: {_safe_url(url)}")
    if before == after:
        click.echo(f"already at revision {after} (head)")
    else:
        click.echo(f"upgraded from {before or '(empty)'} to {after}")


@db.command()
@config_option
def current(config: Config) -> None:
    """Print the database's revision and whether it is up to date."""
    from bridge.db import migrate

    url = config.database_url
    try:
        revision = migrate.current_revision(url)
    except Exception as exc:
        fail(f"cannot read {_safe_url(url)}: {exc}")
        return
    head = migrate.head_revision()
    click.echo(f"database: {_safe_url(url)}")
    if revision == head:
        click.echo(f"revision {revision} (head)")
    else:
        click.echo(f"revision {revision or '(empty)'}; newest is {head}: run `hotline-bridge db upgrade`")
