"""The database as a capability: `db` and `events` commands, the schema brought up at start, /healthz "database"."""
from __future__ import annotations

from bridge.capability import Capability, Runtime, StartError
from bridge.health import UP


class DatabaseCapability(Capability):
    name = "db"
    order = 10
    health_components = ("database",)
    essential_components = ("database",)  # without it nothing works: /healthz answers 503

    def commands(self):
        from bridge.db.cli import db
        from bridge.domain_events_cli import events

        return (db, events)

    def prepare(self, runtime: Runtime) -> None:
        from bridge.db import migrate

        url = runtime.config.database_url
        if runtime.db.engine.dialect.name == "sqlite":
            migrate.upgrade(url)  # the embedded default upgrades itself
        elif not migrate.is_up_to_date(url):
            raise StartError(
                "the PostgreSQL schema is not at the current revision; run `hotline-bridge db upgrade -c CONFIG` first"
            )
        runtime.health.set("database", UP)

    def health_probes(self):
        return {"database": _ping}


def _ping(db) -> None:
    db.ping()
