"""CDR tables shaped as the shipped templates make Asterisk write them, for the attempt
recovery tests: a SQLite ``master.db`` whose ``cdr`` table has the columns of
``dialplan/templates/cdr_sqlite3_custom.conf.j2`` (created as cdr_sqlite3_custom creates
it: ``AcctId INTEGER PRIMARY KEY`` and the listed columns), or a PostgreSQL table of
``bridge.pbx.recovery.PG_TABLES`` (what cdr_pgsql fills)."""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, text

from bridge.pbx.recovery import PG_TABLES, AsteriskTable

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "dialplan" / "templates" / "cdr_sqlite3_custom.conf.j2"


def template_columns() -> list[str]:
    line = re.search(r"^columns\s*=>\s*(.+)$", TEMPLATE.read_text(encoding="utf-8"), re.M).group(1)
    return [c.strip() for c in line.split(",")]


_sequence = iter(range(100, 10**6))


@dataclass
class Leg:
    """One CDR row of a callback: the operator's channel (party A) and, once it dialled, the
    caller's (party B)."""

    key: str
    disposition: str
    dialled: bool = True
    started: float = 1796270000.0   # epoch seconds: the uniqueid's part
    duration: int = 30
    recording: str = ""

    def row(self) -> dict[str, str]:
        seq = next(_sequence)
        uniqueid = f"{self.started:.0f}.{seq}"
        return {"calldate": "2026-12-03 10:00:00", "clid": '"96811" <96811>', "src": "96811",
                "dst": "13900001111", "dcontext": "hotline-callback", "channel": f"PJSIP/8001-{seq:08x}",
                "dstchannel": f"PJSIP/carrier-{seq + 1:08x}" if self.dialled else "",
                "lastapp": "Dial" if self.dialled else "AppDial", "disposition": self.disposition,
                "duration": str(self.duration), "billsec": "0", "uniqueid": uniqueid, "linkedid": uniqueid,
                "hotline_disposition": "callback", "hotline_recording": self.recording,
                "hotline_callback_attempt": self.key}


def other_call(started: float, duration: int = 60) -> dict[str, str]:
    """An inbound call's row (no attempt key), as the hotline's own calls leave them."""
    seq = next(_sequence)
    uniqueid = f"{started:.0f}.{seq}"
    return {"calldate": "2026-12-03 09:00:00", "src": "13800000000", "dst": "s", "dcontext": "hotline-operator",
            "channel": f"PJSIP/carrier-{seq:08x}", "dstchannel": f"PJSIP/8002-{seq:08x}", "lastapp": "Queue",
            "disposition": "ANSWERED", "duration": str(duration), "uniqueid": uniqueid, "linkedid": uniqueid,
            "hotline_disposition": "operator", "hotline_recording": "", "hotline_callback_attempt": ""}


class SqliteCdr:
    def __init__(self, folder: Path, columns: list[str] | None = None) -> None:
        self.path = folder / "master.db"
        self.columns = columns or template_columns()
        with sqlite3.connect(self.path) as connection:
            connection.execute(f"CREATE TABLE IF NOT EXISTS cdr (AcctId INTEGER PRIMARY KEY, {', '.join(self.columns)})")
        connection.close()

    def table(self) -> AsteriskTable:
        return AsteriskTable.sqlite(lambda: self.path, "cdr")

    def add(self, *rows: dict[str, str]) -> None:
        with sqlite3.connect(self.path) as connection:
            for row in rows:
                values = [row.get(c, "") for c in self.columns]
                connection.execute(f"INSERT INTO cdr ({', '.join(self.columns)}) VALUES "
                                   f"({', '.join('?' * len(self.columns))})", values)
        connection.close()


class PgCdr:
    def __init__(self, engine: Engine, url: str, name: str) -> None:
        self.engine, self.url, self.name = engine, url, name
        with engine.begin() as connection:
            for statement in PG_TABLES.format(cel=f"{name}_cel", cdr=name).split(";"):
                if statement.strip():
                    connection.execute(text(statement))

    def table(self) -> AsteriskTable:
        return AsteriskTable.postgresql(self.url, self.name)

    def add(self, *rows: dict[str, str]) -> None:
        with self.engine.begin() as connection:
            for row in rows:
                values = {k: v for k, v in row.items() if k not in ("calldate", "duration", "billsec")}
                values.update(calldate=datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc).replace(tzinfo=None),
                              duration=int(row.get("duration") or 0), billsec=int(row.get("billsec") or 0))
                connection.execute(text(f"INSERT INTO {self.name} ({', '.join(values)}) VALUES "
                                        f"({', '.join(':' + k for k in values)})"), values)

    def drop(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {self.name}"))
            connection.execute(text(f"DROP TABLE IF EXISTS {self.name}_cel"))
