"""Engines and sessions: SQLite (the embedded default) and PostgreSQL (psycopg 3).

The daemon is one asyncio process, but the database code is plain *synchronous*
SQLAlchemy: it runs in worker threads (``asyncio.to_thread``) through
:meth:`Database.run`.  We deliberately do not use SQLAlchemy's asyncio
extension: one code path serves the daemon, the command line and the tests.

SQLite connections are set up on every connect: WAL journal (readers never block
the writer), ``foreign_keys=ON``, a ``busy_timeout`` so a writer waits for the
lock instead of failing, and ``synchronous=NORMAL`` (safe with WAL).  SQLAlchemy,
not the ``sqlite3`` module, emits ``BEGIN``: every transaction starts with its
first statement (SELECTs included) and is ``BEGIN IMMEDIATE`` by default, so it
holds the write lock from the start.  That serialises writers up front and
avoids SQLite's "database is locked" failure when two read-then-write
transactions race (SQLITE_BUSY_SNAPSHOT); a connection given the execution
option ``sqlite_begin="DEFERRED"`` (see :meth:`Database.session` with
``readonly=True``) reads without taking the write lock.

PostgreSQL connections run with ``jit = off``: the reports' queries are estimated costly enough
(a month of 40,000 cases) for PostgreSQL to compile them, and the compiling took longer than the
query (634 ms of JIT on a 320 ms summary, docs/performance.md).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

# Milliseconds a SQLite connection waits for the write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

_SQLITE_BEGIN_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _make_sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    path = _sqlite_file(url)
    if path is not None:
        path.expanduser().absolute().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # SQLAlchemy emits BEGIN itself (see _on_begin); PRAGMAs then run outside a transaction.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if path is not None:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        mode = str(options.get("sqlite_begin", "IMMEDIATE")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"sqlite_begin must be one of {_SQLITE_BEGIN_MODES}, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _without_jit(url: URL) -> URL:
    """The URL with ``-c jit=off`` added to its server options, unless it sets ``jit`` itself."""
    options = url.query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options
    if "jit" in options:
        return url
    return url.update_query_dict({"options": f"{options} -c jit=off".strip()})


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` (as given by ``Config.database_url``).

    SQLite: the pragmas above on every connection; the file's folder is created.
    PostgreSQL: the psycopg 3 driver (``postgresql://`` is taken to mean it) and
    ``pool_pre_ping`` so a restarted server does not break the first query.
    Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    parsed = make_url(url)
    if _is_sqlite(parsed):
        return _make_sqlite_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(_without_jit(parsed), **kwargs)
    raise ValueError(f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
                     "expected sqlite:/// or postgresql://")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay usable after commit (expire_on_commit=False)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


class Database:
    """The daemon's handle on the database: one engine, sessions, and thread offloading.

    Synchronous SQLAlchemy in worker threads, not the asyncio extension::

        db = Database(config.database_url)
        with db.session() as session:        # commits on success, rolls back on error
            session.add(...)
        await db.run(sync_fn, arg)                       # sync_fn(arg) in a worker thread
        case = await db.run_in_session(lambda s: s.get(Case, 1))  # fn(session) in a thread
        db.dispose()
    """

    def __init__(self, url: str | URL, **engine_kwargs: Any):
        self.url = make_url(url)
        self.engine: Engine = make_engine(self.url, **engine_kwargs)
        self.sessions = session_factory(self.engine)
        self._readonly_sessions = sessionmaker(
            bind=self.engine.execution_options(sqlite_begin="DEFERRED"), expire_on_commit=False)

    @property
    def backend(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.url.get_backend_name()

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back on error.

        ``readonly=True`` never commits (always rolls back) and, on SQLite, does not
        take the write lock, so it never waits for a writer.
        """
        factory = self._readonly_sessions if readonly else self.sessions
        session = factory()
        try:
            yield session
            if readonly:
                session.rollback()
            else:
                session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """From the event loop: ``fn(*args, **kwargs)`` in a worker thread (``asyncio.to_thread``).

        ``fn`` is plain synchronous code that opens its own ``self.session()``; the
        event loop keeps running meanwhile, and ``fn``'s exception reaches the caller.
        """
        return await asyncio.to_thread(fn, *args, **kwargs)

    def in_session(self, fn: Callable[..., T], *args: Any, readonly: bool = False, **kwargs: Any) -> T:
        """``fn(session, *args, **kwargs)`` in a new session (committed unless it raises)."""
        with self.session(readonly=readonly) as session:
            return fn(session, *args, **kwargs)

    async def run_in_session(self, fn: Callable[..., T], *args: Any, readonly: bool = False, **kwargs: Any) -> T:
        """From the event loop: ``fn(session, *args, **kwargs)`` in a worker thread, in its own
        session, committed when ``fn`` returns and rolled back if it raises.  The returned
        objects are detached but keep their loaded attributes (expire_on_commit=False)."""
        return await asyncio.to_thread(self.in_session, fn, *args, readonly=readonly, **kwargs)

    def ping(self) -> None:
        """Raise if the database cannot be reached (a ``SELECT 1``); for /healthz."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown)."""
        self.engine.dispose()
