"""`hotline-bridge events parked|retry ID`: domain events a consumer kept failing on (bridge.domain_events)."""
from __future__ import annotations

import click

from bridge.cli_options import config_option, fail, open_database, render_table
from bridge.config import Config


@click.group("events")
def events() -> None:
    """Domain events between capabilities: the parked ones, and another try."""


@events.command("parked")
@click.option("--all", "show_all", is_flag=True, help="also those handled since")
@config_option
def parked_command(config: Config, show_all: bool) -> None:
    """List the events parked after failing (newest first): consumer, case, failures, error."""
    from sqlalchemy import select

    from bridge.db.models import Case, ParkedDomainEvent

    with open_database(config) as db:
        with db.session(readonly=True) as session:
            query = (select(ParkedDomainEvent, Case.number).join(Case, Case.id == ParkedDomainEvent.case_id)
                     .order_by(ParkedDomainEvent.id.desc()))
            if not show_all:
                query = query.where(ParkedDomainEvent.resolved_at.is_(None))
            rows = [[str(p.id), p.consumer, number, str(p.position), str(p.failures), _state(config, p),
                     p.error[:80]] for p, number in session.execute(query)]
    click.echo(render_table(["id", "consumer", "case", "event", "failures", "state", "error"], rows))
    click.echo(f"{len(rows)} parked event(s)" + ("" if show_all else " unresolved"))


def _state(config: Config, parked) -> str:
    zone = config.site.zone
    if parked.resolved_at is not None:
        return "handled " + parked.resolved_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if parked.retry_requested_at is not None:
        return "retry asked " + parked.retry_requested_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return "parked " + parked.parked_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


@events.command("retry")
@click.argument("parked_id", type=int)
@config_option
def retry_command(config: Config, parked_id: int) -> None:
    """Ask the running daemon to hand parked event ID over again (once its cause is fixed)."""
    from bridge.domain_events import POLL_S, request_retry

    with open_database(config) as db:
        try:
            with db.session() as session:
                parked = request_retry(session, parked_id)
                consumer = parked.consumer
        except LookupError as exc:
            fail(str(exc))
            return
    click.echo(f"parked event {parked_id} ({consumer}): the daemon tries it again within {int(POLL_S)} s; "
               "`hotline-bridge events parked --all` shows the result")
