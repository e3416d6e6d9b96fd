"""Database fixtures (a pytest plugin: listed in tests/conftest.py ``pytest_plugins``).

``db_url`` runs a test twice: on a fresh SQLite file and on a fresh schema of the
local PostgreSQL server, each upgraded to the newest revision.  ``db`` is a
:class:`bridge.db.engine.Database` on it; ``empty_db_url`` is the same without
the upgrade.

PostgreSQL: ``$HOTLINE_BRIDGE_TEST_PG_URL`` or postgresql+psycopg://postgres@127.0.0.1:5432/test
(trust auth).  Each test gets its own schema, selected with
``?options=-csearch_path=<schema>`` in the URL, so every table, the trigger
function and Alembic's ``alembic_version`` live in it; the schema is dropped
(CASCADE) afterwards.  An unreachable server FAILS the tests, never skips them:
the test command starts PostgreSQL before pytest.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bridge.db import migrate
from bridge.db.engine import Database

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


@pytest.fixture
def pg_schema_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Call it for a URL on a new, empty PostgreSQL schema; all are dropped after the test."""
    admin: Engine = request.getfixturevalue("pg_admin_engine")
    schemas: list[str] = []

    def new_schema_url() -> str:
        schema = f"test_{uuid.uuid4().hex[:16]}"
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        url = make_url(pg_base_url()).update_query_dict(
            {"options": f"-csearch_path={schema}", "application_name": schema})
        return url.render_as_string(hide_password=False)

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


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A database upgraded to the newest revision, on SQLite and on PostgreSQL."""
    migrate.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A :class:`Database` on ``db_url``; disposed after the test."""
    database = Database(db_url)
    try:
        yield database
    finally:
        database.dispose()
