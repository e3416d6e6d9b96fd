"""The 108 units as a capability: `departments` commands, the shipped units at start, /api/v1/departments."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class DepartmentsCapability(Capability):
    name = "departments"
    order = 20

    def commands(self):
        from bridge.departments.cli import departments

        return (departments,)

    def prepare(self, runtime: Runtime) -> None:
        from bridge.departments.service import ensure_shipped_units

        with runtime.db.session() as session:
            ensure_shipped_units(session)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.departments.api import router

        app.include_router(router)
