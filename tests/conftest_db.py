"""Database fixtures (a pytest plugin: listed in tests/conftest.py ``pytest_plugins``).

``db_url`` runs a test twice: on a fresh SQLite file and on a fresh schema of the
local PostgreSQL server, each at the newest revision.  ``db`` is a
:class:`bridge.db.engine.Database` on it; ``empty_db_url`` is the same, empty (the
migration tests upgrade it themselves).

Migrated once per test run, copied per test (a full Alembic upgrade costs far more):
SQLite, a template file migrated once and copied; PostgreSQL, the statements Alembic ran to
migrate a template schema, recorded once and replayed into each test's new schema in one
round trip.  Not ``CREATE DATABASE ... TEMPLATE``: every ``DROP DATABASE`` forces a
checkpoint, which on a shared server costs seconds now and then; a schema per test also
keeps the URLs and the clean-up below.  The copies are checked like any migrated database:
tests/db/test_db_migrations.py compares ``db_url`` with models.py.

PostgreSQL: ``$HOTLINE_BRIDGE_TEST_PG_URL`` or postgresql+psycopg://postgres@127.0.0.1:5432/test
(trust auth).  Each test gets its own schema, selected with
``?options=-csearch_path=<schema>`` in the URL, so every table, the trigger
function and Alembic's ``alembic_version`` live in it; the schema is dropped
(CASCADE) afterwards.  An unreachable server FAILS the tests, never skips them:
the test command starts PostgreSQL before pytest.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bridge.db import migrate
from bridge.db.engine import Database, make_engine

PG_URL_ENV = "HOTLINE_BRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def pg_base_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """An engine on the test database's default schema (creates and drops test schemas)."""
    url = pg_base_url()
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    problem = None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as the failure below
        problem = exc
    if problem is not None:
        engine.dispose()
        exc = problem
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)} "
            f"(set {PG_URL_ENV} to use another server): {exc}\n"
            "The test command starts PostgreSQL before pytest; start it (e.g. `pg_ctlcluster 15 main start`) "
            "and check it accepts trust connections on 127.0.0.1:5432 to database `test`.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


def _drop_schema(admin: Engine, schema: str) -> None:
    with admin.begin() as connection:
        # Connections a test left open would block DROP SCHEMA: end them first.
        connection.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = :name AND pid <> pg_backend_pid()"),
            {"name": schema},
        )
        connection.execute(text("SET LOCAL lock_timeout = '30s'"))
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def _create_schema(admin: Engine) -> tuple[str, str]:
    """A new, empty schema: (its name, a URL whose connections use it and carry its name)."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(pg_base_url()).update_query_dict(
        {"options": f"-csearch_path={schema}", "application_name": schema})
    return schema, url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Call it for a URL on a new, empty PostgreSQL schema; all are dropped after the test."""
    admin: Engine = request.getfixturevalue("pg_admin_engine")
    schemas: list[str] = []

    def new_schema_url() -> str:
        schema, url = _create_schema(admin)
        schemas.append(schema)
        return url

    try:
        yield new_schema_url
    finally:
        for schema in schemas:
            _drop_schema(admin, schema)


@pytest.fixture
def pg_schema_url(pg_schema_factory: Callable[[], str]) -> str:
    """A URL on a new, empty PostgreSQL schema (dropped after the test)."""
    return pg_schema_factory()


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL on an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'hotline-bridge.sqlite3'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def db_backend(empty_db_url: str) -> str:
    """"sqlite" or "postgresql": the backend ``db_url`` is on."""
    return make_url(empty_db_url).get_backend_name()


# One recorded statement of the template's migration: (SQL, parameters, executemany).
Statement = tuple[str, object, bool]


def _migrated_sqlite_file(path: Path) -> Path:
    """``path`` upgraded to the newest revision, its WAL folded in (the copies are one file)."""
    migrate.upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path


def _recorded_pg_migration(admin: Engine) -> list[Statement] | None:
    """What Alembic sends to migrate an empty schema (a template, dropped afterwards); None if
    a statement names that schema, so that replaying it elsewhere would not be a copy."""
    schema, url = _create_schema(admin)
    statements: list[Statement] = []
    engine = make_engine(url, poolclass=NullPool)

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn, _cursor, statement, parameters, _context, executemany) -> None:
        # The upgrade lock guards concurrent upgrades of one schema; a new schema needs none.
        if "pg_advisory_xact_lock" not in statement:
            statements.append((statement, parameters, executemany))

    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
        _drop_schema(admin, schema)
    if any(schema in statement or schema in repr(parameters) for statement, parameters, _ in statements):
        return None
    return statements


def _replay(url: str, statements: list[Statement]) -> None:
    """Run the recorded statements on ``url``'s schema in one transaction, pipelined."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        raw = engine.raw_connection()
        try:
            connection = raw.driver_connection  # psycopg 3: send them all, then wait once
            with connection.pipeline(), connection.cursor() as cursor:
                for statement, parameters, many in statements:
                    if many:
                        cursor.executemany(statement, parameters)
                    else:
                        cursor.execute(statement, parameters)
            connection.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


class MigratedTemplate:
    """The newest schema, migrated once per test run (per backend, when first needed) and
    copied into each test's empty database."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._sqlite_file: Path | None = None
        self._pg_statements: list[Statement] | None = None
        self._pg_recorded = False

    def copy_to_sqlite(self, target: Path) -> None:
        """The migrated SQLite database as the file ``target``."""
        if self._sqlite_file is None:
            self._sqlite_file = _migrated_sqlite_file(self.folder / "template.sqlite3")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._sqlite_file, target)

    def copy_to_pg(self, empty_schema_url: str, admin: Engine) -> None:
        """The migrated schema into the empty one of ``empty_schema_url``."""
        if not self._pg_recorded:
            self._pg_statements = _recorded_pg_migration(admin)
            self._pg_recorded = True
        if self._pg_statements is None:   # not replayable: the slow, sure way
            warnings.warn("a migration names its schema: each PostgreSQL test runs the full upgrade", stacklevel=1)
            migrate.upgrade(empty_schema_url)
        else:
            _replay(empty_schema_url, self._pg_statements)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> MigratedTemplate:
    return MigratedTemplate(tmp_path_factory.mktemp("migrated-template"))


@pytest.fixture
def db_url(empty_db_url: str, migrated_template: MigratedTemplate, request: pytest.FixtureRequest) -> str:
    """A database at the newest revision (a copy of the run's migrated template), on SQLite
    and on PostgreSQL."""
    url = make_url(empty_db_url)
    if url.get_backend_name() == "sqlite":
        migrated_template.copy_to_sqlite(Path(url.database))
    else:
        migrated_template.copy_to_pg(empty_db_url, request.getfixturevalue("pg_admin_engine"))
    return empty_db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A :class:`Database` on ``db_url``; disposed after the test."""
    database = Database(db_url)
    try:
        yield database
    finally:
        database.dispose()
