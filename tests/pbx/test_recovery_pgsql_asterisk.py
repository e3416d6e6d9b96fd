"""The real Asterisk test bed writing CEL and CDR into the local PostgreSQL through cel_pgsql /
cdr_pgsql (``[pbx] cel_url``, rendered into cel_pgsql.conf / cdr_pgsql.conf), and the daemon's
PBX link recovering from those tables a call it did not see.

An Asterisk instance of its own (the session's test bed writes SQLite files), with CEL/CDR
tables of their own in the ``test`` database, so parallel runs do not collide.
"""
from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from bridge.db import migrate
from bridge.db.engine import Database
from bridge.db.models import CallDisposition
from tests.pbx.recorded_tables import asterisk_writing_to_postgresql
from tests.pbx.test_calllog_asterisk import Bridge, finished, new_caller

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def pg_asterisk(tmp_path_factory, pg_admin_engine):
    with asterisk_writing_to_postgresql(tmp_path_factory.mktemp("asterisk-pg"), pg_admin_engine) as bed:
        yield bed


async def rows_in_postgresql(engine, table: str, caller: str, timeout: float = 30) -> list[dict]:
    """The CEL rows of ``caller``'s call, once its LINKEDID_END row is there."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as connection:
            found = [dict(r._mapping) for r in connection.execute(text(
                f"SELECT * FROM {table} WHERE linkedid IN (SELECT linkedid FROM {table} WHERE cid_num = :n) "
                "ORDER BY id"), {"n": caller})]
        if any(r["eventtype"] == "LINKEDID_END" for r in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_a_call_made_while_the_daemon_is_down_is_recovered_from_postgresql(
        pg_asterisk, pg_admin_engine, tmp_path):
    asterisk = pg_asterisk
    cel, cdr = asterisk.tables
    loaded = asterisk.cli("module show like pgsql")
    assert "cel_pgsql.so" in loaded and "cdr_pgsql.so" in loaded, loaded
    caller = new_caller()
    with asterisk.desk_phone("8001"):
        await finished(asterisk.place_calls(1, caller_number=caller, caller_name="蒋女士", digits="1",
                                            hold_ms=2500))
    written = await rows_in_postgresql(pg_admin_engine, cel, caller)
    assert any(r["eventtype"] == "LINKEDID_END" for r in written), [r["eventtype"] for r in written]
    linkedid = written[0]["linkedid"]
    with pg_admin_engine.connect() as connection:
        disposition = connection.execute(text(
            f"SELECT hotline_disposition FROM {cdr} WHERE uniqueid = linkedid AND linkedid = :l"),
            {"l": linkedid}).scalars().all()
    assert "operator" in disposition   # cdr_pgsql filled the column from the CDR variable

    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    bridge = Bridge(asterisk, db)
    try:
        service = await bridge.start()
        assert (service.recovery.cel.table, service.recovery.cel.row_id) == (cel, "id")   # read from PostgreSQL
        (call,) = await bridge.wait_calls([caller], count=1)
    finally:
        await bridge.stop()
        db.dispose()
    assert call.linkedid == linkedid and call.source == "recovered"
    assert call.disposition == CallDisposition.ANSWERED and call.extension == "8001"
    assert call.caller_name == "蒋女士"
    assert call.recording and linkedid in call.recording
    # eventtime is UTC (usegmtime): the call is placed now, not hours off.
    assert abs((call.ended_at - written[-1]["eventtime"].replace(tzinfo=call.ended_at.tzinfo)).total_seconds()) < 2
    assert abs(time.time() - call.ended_at.timestamp()) < 120
