"""Schema migrations in code: Alembic configured programmatically, no alembic.ini needed.

The migration scripts ship inside the package (``bridge/db/migrations``), so an
installed daemon can upgrade its own database.  Logging is not touched: Alembic's
loggers propagate to whatever ``bridge.logs`` configured.

    upgrade(config.database_url)      # to head; a no-op when already there
    current_revision(url)             # None on an empty database
    is_up_to_date(url)

Each function takes a URL (a new engine, disposed afterwards) or an ``Engine``
(e.g. ``Database.engine``; left open).  ``upgrade`` runs in one transaction: on
PostgreSQL an advisory lock keeps two processes from upgrading at once, on
SQLite ``BEGIN IMMEDIATE`` does the same.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from bridge.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# pg_advisory_xact_lock key held while upgrading ("hotline-bridge" in hex, cut to 63 bits).
_PG_UPGRADE_LOCK = 0x686F746C696E65


def alembic_config(url: str | URL | None = None) -> AlembicConfig:
    """An Alembic Config built in code: the packaged scripts and, if given, the URL."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
        # ConfigParser interpolation: a literal % (e.g. ?options=-csearch_path%3Dx) is %%.
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


@contextmanager
def _engine(target: str | URL | Engine) -> Iterator[Engine]:
    if isinstance(target, Engine):
        yield target
        return
    engine = make_engine(target)
    try:
        yield engine
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this version of the package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(target: str | URL | Engine) -> str | None:
    """The database's revision; None when it has never been migrated."""
    with _engine(target) as engine, engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_up_to_date(target: str | URL | Engine) -> bool:
    return current_revision(target) == head_revision()


def upgrade(target: str | URL | Engine, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision`` (head by default); returns the revision reached."""
    with _engine(target) as engine:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_UPGRADE_LOCK})
            cfg = alembic_config(engine.url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()


def downgrade(target: str | URL | Engine, revision: str) -> str | None:
    """Downgrade to ``revision`` ("base" empties the schema); for development and tests."""
    with _engine(target) as engine:
        with engine.begin() as connection:
            cfg = alembic_config(engine.url)
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, revision)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
