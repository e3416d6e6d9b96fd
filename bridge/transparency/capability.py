"""The transparency capability: the units' figures for the public and for supervisors."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class TransparencyCapability(Capability):
    name = "transparency"
    order = 75  # after the desk (60: its look, for the units pages) and the forum (70), whose timeline it reads

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.transparency import api, desk_pages, pages

        app.include_router(api.router)
        app.include_router(pages.router)
        desk_pages.mount_pages(app)
