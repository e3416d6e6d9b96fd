"""Alembic environment for hotline-bridge (shipped inside the package).

Run through :mod:`bridge.db.migrate` (``hotline-bridge db upgrade``), which hands
over an open connection in ``config.attributes["connection"]``; the ``alembic``
command line works too, with ``-c bridge/db/alembic.ini -x url=...``.  Logging
is left alone (no ``fileConfig``): the daemon's structlog setup stays in charge.
SQLite uses batch mode, so ALTERs become table rebuilds; see bridge/db/guards.py
about re-installing the no-delete triggers after rebuilding a guarded table.
"""
from __future__ import annotations

from alembic import context

from bridge.db.engine import make_engine
from bridge.db.models import Base

target_metadata = Base.metadata
config = context.config


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )


def run_migrations_offline() -> None:
    url = config.get_main_option("sqlalchemy.url") or context.get_x_argument(as_dictionary=True).get("url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"},
                      render_as_batch=url is not None and url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        # bridge.db.migrate: the caller owns the connection and its transaction.
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database URL: pass -x url=... or set sqlalchemy.url")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
