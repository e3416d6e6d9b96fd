"""Cases as a capability: /api/v1/cases (filing publishes the live topic "case")."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class CasesCapability(Capability):
    name = "cases"
    order = 50
    live_topics = ("case",)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.cases.api import router

        app.include_router(router)
