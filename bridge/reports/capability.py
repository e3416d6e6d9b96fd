"""The supervisors' reports as a capability: the callback completion log's page and the call log
on the desk (with links in the desk's menu for supervisors and admins), their exports and their API."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class ReportsCapability(Capability):
    name = "reports"
    order = 90  # after the desk (its look and menu) and callbacks (whose tasks it reports on)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.reports.api import router as api_router
        from bridge.reports.call_pages import mount_call_pages
        from bridge.reports.calls_api import router as calls_router
        from bridge.reports.pages import mount_pages

        app.include_router(api_router)
        app.include_router(calls_router)
        mount_pages(app)
        mount_call_pages(app)
