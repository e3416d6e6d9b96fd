"""Recovery from CEL/CDR in PostgreSQL (Asterisk's cel_pgsql / cdr_pgsql tables, ``[pbx]
cel_url``): the recorded rows in such tables give the calls the SQLite files give, and the
configuration keys are checked.  Tables get names of their own per test (parallel runs)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from bridge.config import ConfigError, validate
from bridge.pbx.recovery import CdrRecovery, pgsql_writer_settings, recover_batch
from tests.conftest_db import pg_base_url
from tests.pbx.recorded_tables import live_calls, pg_tables, soon_after, sqlite_tables
from tests.pbx.test_recovery_incremental import SCENARIOS, stored

SECRETS = {"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"}


@pytest.fixture
def pg_tables_named(pg_admin_engine):
    names = (f"cel_{uuid.uuid4().hex[:10]}", f"cdr_{uuid.uuid4().hex[:10]}")
    yield names
    with pg_admin_engine.begin() as connection:
        for name in names:
            connection.execute(text(f"DROP TABLE IF EXISTS {name}"))


def summary(records):
    return {r.linkedid: (r.disposition, r.caller_name, r.recording, r.message_file, r.extension,
                         round(r.talk_s or 0), r.arrived_at.replace(microsecond=0)) for r in records}


@pytest.mark.postgres
def test_pgsql_tables_give_the_calls_the_sqlite_files_give(pg_admin_engine, pg_tables_named, tmp_path):
    cel, cdr = pg_tables_named
    pg_tables(pg_admin_engine, cel, cdr, *SCENARIOS)
    now = soon_after(*SCENARIOS)
    from_pg = CdrRecovery.from_urls(pg_base_url(), pg_base_url(), ["96811"], "hotline",
                                    cel_table=cel, cdr_table=cdr)
    try:
        got = from_pg.records(now=now)
    finally:
        from_pg.dispose()
    from_files = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline").records(now=now)
    assert len(got) == 8 and summary(got) == summary(from_files)
    assert {r.linkedid: r.disposition for r in got} == {k: r.disposition for k, r in live_calls(*SCENARIOS).items()}


@pytest.mark.postgres
def test_incremental_runs_over_pgsql_tables(pg_admin_engine, pg_tables_named, db):
    cel, cdr = pg_tables_named
    pg_tables(pg_admin_engine, cel, cdr, *SCENARIOS)
    recovery = CdrRecovery.from_urls(pg_base_url(), None, ["96811"], "hotline", cel_table=cel,
                                     lookback=timedelta(days=7))
    try:
        now = soon_after(*SCENARIOS)
        runs = [recover_batch(db, recovery, now=now, limit=5) for _ in range(3)]
    finally:
        recovery.dispose()
    assert [(r.recovered, r.more) for r in runs] == [(5, True), (3, False), (0, False)]
    assert len(stored(db)) == 8


def test_cel_url_keys_are_validated():
    with pytest.raises(ConfigError) as error:
        validate({"pbx": {"cel_url": "mysql://asterisk@db/asterisk", "cel_table": "cel; drop"}}, environ=SECRETS)
    problems = "\n".join(error.value.problems)
    assert "pbx.cel_url: expected a postgresql:// URL" in problems
    assert "pbx.cel_table: 'cel; drop' is not a table name" in problems
    with pytest.raises(ConfigError, match="cdr_url is set but cel_url is not"):
        validate({"pbx": {"cdr_url": "postgresql://a@b/c"}}, environ=SECRETS)
    with pytest.raises(ConfigError, match="cdr_path and cel_url are both set"):
        validate({"pbx": {"cdr_path": "/var/log/asterisk/master.db", "cel_url": "postgresql://a@b/c"}},
                 environ=SECRETS)
    with pytest.raises(ConfigError, match="pbx.cel_password_env: environment variable CEL_PW is not set"):
        validate({"pbx": {"cel_url": "postgresql://a@b/c", "cel_password_env": "CEL_PW"}}, environ=SECRETS)


def test_cel_url_gives_the_urls_and_the_asterisk_writer_settings():
    config = validate({"pbx": {"cel_url": "postgresql://asterisk@db.example.org:5433/pbx", "cel_table": "cel_96811",
                               "cel_password_env": "CEL_PW"}}, environ={**SECRETS, "CEL_PW": "p@ss"})
    assert config.cel_database_url == "postgresql+psycopg://asterisk:p%40ss@db.example.org:5433/pbx"
    assert config.cdr_database_url == config.cel_database_url          # cdr_url defaults to cel_url
    settings = pgsql_writer_settings(config)
    assert settings["cel_pgsql"] == {"host": "db.example.org", "port": 5433, "dbname": "pbx", "user": "asterisk",
                                     "password": "p@ss", "table": "cel_96811"}
    assert settings["cdr_pgsql"]["table"] == "cdr"
    assert pgsql_writer_settings(validate({}, environ=SECRETS)) == {"cel_pgsql": None, "cdr_pgsql": None}


def test_the_sandbox_writes_cel_and_cdr_into_postgresql_only_when_cel_url_is_set(tmp_path):
    from bridge.pbx.sandbox import Sandbox

    def render(**pbx):
        data = {"sandbox": {"state_dir": str(tmp_path / "state"), "asterisk_root": str(tmp_path / "root")},
                "pbx": pbx}
        return Sandbox(validate(data, environ=SECRETS, base_dir=tmp_path), ami_secret="x").render()

    plain = render()
    assert "cel_pgsql.so" not in plain["modules.conf"] and "cdr_pgsql.so" not in plain["modules.conf"]
    assert "hostname" not in plain["cel_pgsql.conf"]
    files = render(cel_url="postgresql://postgres@127.0.0.1:5432/test", cel_table="cel_t1", cdr_table="cdr_t1")
    assert "load => cel_pgsql.so" in files["modules.conf"] and "load => cdr_pgsql.so" in files["modules.conf"]
    cel = files["cel_pgsql.conf"]
    for line in ("hostname = 127.0.0.1", "port = 5432", "dbname = test", "user = postgres", "table = cel_t1",
                 "usegmtime = yes"):
        assert line in cel.splitlines(), line
    cdr = files["cdr_pgsql.conf"].splitlines()
    assert "table = cdr_t1" in cdr and "encoding = UTF8" in cdr and "timezone = UTC" in cdr
    assert "load => cel_sqlite3_custom.so" in files["modules.conf"]   # the files go on being written too
