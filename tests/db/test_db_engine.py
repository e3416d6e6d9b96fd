"""Engine set-up (SQLite pragmas, PostgreSQL driver), sessions, Database.run, UTC times."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from bridge.db.engine import Database, make_engine, session_factory
from bridge.db.models import Call, Department, DepartmentKind, Role, User


def test_sqlite_pragmas_on_every_connection(tmp_path):
    path = tmp_path / "new" / "folder" / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        assert path.parent.is_dir()
        # Distinct pooled connections; DEFERRED so they do not queue for the write lock.
        connections = [engine.connect().execution_options(sqlite_begin="DEFERRED") for _ in range(3)]
        for connection in connections:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        for connection in connections:
            connection.close()
    finally:
        engine.dispose()


def test_wal_mode_on_the_migrated_database(db, db_backend):
    if db_backend == "sqlite":
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    else:
        assert db.engine.dialect.driver == "psycopg"
        assert db.engine.pool._pre_ping


def test_postgresql_url_gets_psycopg3(pg_schema_url):
    from sqlalchemy.engine import make_url

    plain = make_url(pg_schema_url).set(drivername="postgresql").render_as_string(hide_password=False)
    engine = make_engine(plain)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
            # no JIT (it took longer than the reports' queries), and the URL's own options kept
            assert connection.execute(text("SHOW jit")).scalar() == "off"
            assert connection.execute(text("SHOW search_path")).scalar().startswith("test_")
    finally:
        engine.dispose()


def test_unsupported_url_is_refused():
    with pytest.raises(ValueError, match="sqlite:/// or postgresql://"):
        make_engine("mysql://root@127.0.0.1/x")


def test_foreign_keys_are_enforced(db):
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(User(username="ghost", role=Role.SPOKESPERSON, password_hash="x", department_id=9999))
    with db.session() as s:
        assert s.scalars(select(User)).all() == []


def test_check_constraint_on_enum_columns(db):
    with pytest.raises(IntegrityError):
        with db.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO departments (code, name, kind, pinyin_initials, keywords, created_at) "
                "VALUES ('x', 'x', 'no_such_kind', '', '', CURRENT_TIMESTAMP)"))


def test_timezone_aware_datetimes_round_trip(db):
    shanghai = datetime(2026, 1, 31, 23, 59, 59, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    with db.session() as s:
        s.add(Call(linkedid="a", arrived_at=shanghai))
    with db.session() as s:
        call = s.scalars(select(Call)).one()
        assert call.arrived_at == shanghai
        assert call.arrived_at.utcoffset() == timedelta(0)
        assert call.arrived_at.tzinfo is not None
        assert call.arrived_at == datetime(2026, 1, 31, 15, 59, 59, 123456, tzinfo=timezone.utc)
        # Defaults (utcnow) are aware too.
        assert call.updated_at.tzinfo is not None
        # Comparisons in SQL use the same UTC representation.
        later = s.scalars(select(Call).where(Call.arrived_at > datetime(2026, 1, 31, 15, 0, tzinfo=timezone.utc))).all()
        assert [c.linkedid for c in later] == ["a"]
        earlier = s.scalars(select(Call).where(Call.arrived_at < shanghai - timedelta(microseconds=1))).all()
        assert earlier == []


def test_naive_datetimes_are_refused(db):
    with pytest.raises(StatementError, match="naive datetime"):
        with db.session() as s:
            s.add(Call(linkedid="b", arrived_at=datetime(2026, 1, 1, 8, 0)))
            s.flush()


def test_session_commits_and_rolls_back(db):
    with db.session() as s:
        s.add(Department(code="a", name="甲", kind=DepartmentKind.COMMUNITY))
    with pytest.raises(RuntimeError):
        with db.session() as s:
            s.add(Department(code="b", name="乙", kind=DepartmentKind.COMMUNITY))
            s.flush()
            raise RuntimeError("boom")
    with db.session(readonly=True) as s:
        assert s.scalars(select(Department.code)).all() == ["a"]
    # A readonly session never commits.
    with db.session(readonly=True) as s:
        s.add(Department(code="c", name="丙", kind=DepartmentKind.COMMUNITY))
        s.flush()
    with db.session() as s:
        assert s.scalars(select(Department.code)).all() == ["a"]


def test_objects_stay_usable_after_commit(db):
    factory = session_factory(db.engine)
    with factory() as s:
        d = Department(code="a", name="甲", kind=DepartmentKind.COMMUNITY)
        s.add(d)
        s.commit()
    assert d.name == "甲" and d.id is not None


async def test_run_works_in_a_worker_thread(db):
    loop_thread = threading.get_ident()

    def add(code, *, name):
        with db.session() as session:
            session.add(Department(code=code, name=name, kind=DepartmentKind.COMMUNITY))
        return threading.get_ident()

    threads = await asyncio.gather(*(db.run(add, f"d{i}", name=f"n{i}") for i in range(5)))
    assert loop_thread not in threads

    def codes(session):
        return session.scalars(select(Department.code).order_by(Department.code)).all()

    assert await db.run_in_session(codes, readonly=True) == [f"d{i}" for i in range(5)]

    def fail(session):
        session.add(Department(code="x", name="x", kind=DepartmentKind.COMMUNITY))
        session.flush()
        raise LookupError("nope")

    with pytest.raises(LookupError):
        await db.run_in_session(fail)
    assert await db.run_in_session(lambda s: s.scalar(select(Department).where(Department.code == "x"))) is None
    department = await db.run_in_session(lambda s: s.scalar(select(Department).where(Department.code == "d0")))
    assert department.name == "n0"  # detached, attributes still loaded
    await db.run(db.ping)


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path):
    from bridge.db import migrate

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as writer:
            writer.add(Department(code="w", name="w", kind=DepartmentKind.COMMUNITY))
            writer.flush()  # holds the write lock now
            with db.session(readonly=True) as reader:
                assert reader.scalars(select(Department)).all() == []
    finally:
        db.dispose()


def test_sqlite_concurrent_read_then_write_transactions_do_not_fail(tmp_path):
    """BEGIN IMMEDIATE: two read-modify-write transactions queue instead of "database is locked"."""
    from bridge.db import migrate

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:
            s.add(Call(linkedid="c", arrived_at=datetime(2026, 1, 1, tzinfo=timezone.utc), hangup_cause=0))
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def bump() -> None:
            try:
                barrier.wait()
                with db.session() as s:
                    call = s.scalars(select(Call)).one()
                    call.hangup_cause += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with db.session() as s:
            assert s.scalars(select(Call)).one().hangup_cause == 8
    finally:
        db.dispose()
