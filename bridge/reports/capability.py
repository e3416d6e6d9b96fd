"""The supervisors' reports as a capability: the callback completion log's page on the desk (with a
link in the desk's menu for supervisors and admins), its exports and its API."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class ReportsCapability(Capability):
    name = "reports"
    order = 90  # after the desk (its look and menu) and callbacks (whose tasks it reports on)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.reports.api import router as api_router
        from bridge.reports.pages import mount_pages

        app.include_router(api_router)
        mount_pages(app)
