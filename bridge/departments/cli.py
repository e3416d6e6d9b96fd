"""`hotline-bridge departments list|import FILE`."""
from __future__ import annotations

import click

from bridge.cli_options import config_option, fail, local_date, open_database, render_table
from bridge.config import Config
from bridge.db.models import utcnow


@click.group("departments")
def departments() -> None:
    """The units that have a board on the forum."""


@departments.command("list")
@click.option("--active", is_flag=True, help="only units in service (hide retired ones)")
@config_option
def list_command(config: Config, active: bool) -> None:
    """List the units: code, kind, name, when retired, and the synonyms the desk finds them by."""
    from bridge.departments.service import list_units

    with open_database(config) as db:
        with db.session(readonly=True) as session:
            units = list_units(session, include_retired=not active)
            rows = [[u.code, u.kind.value, u.name, local_date(config, u.retired_at), u.synonyms] for u in units]
    click.echo(render_table(["code", "kind", "name", "retired", "synonyms"], rows))
    retired = sum(1 for r in rows if r[3])
    click.echo(f"{len(rows)} unit(s), {retired} retired")


@departments.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="check the file and show what would change; store nothing")
@config_option
def import_command(config: Config, file: str, dry_run: bool) -> None:
    """Import an edited units file (CSV: code,name,kind,keywords,synonyms).

    Units missing from the file are retired, never deleted; a retired unit
    listed again is reinstated.  A file with any problem stores nothing.
    """
    from bridge.departments.service import UnitsFileError, import_units, load_units_file

    try:
        rows = load_units_file(file)
    except UnitsFileError as exc:
        fail(exc.render())
    with open_database(config) as db:
        with db.session() as session:
            report = import_units(session, rows, utcnow())
            if dry_run:
                session.rollback()
    for label, codes in (("added", report.added), ("updated", report.updated),
                         ("reinstated", report.reinstated), ("retired", report.retired)):
        if codes:
            click.echo(f"{label}: {' '.join(codes)}")
    prefix = "dry run, nothing stored: " if dry_run else "imported: "
    click.echo(prefix + report.summary())
