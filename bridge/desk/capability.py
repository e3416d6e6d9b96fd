"""The operator desk as a capability: its pages, sessions and SSE stream (live topic "callbacks":
the callback tasks, whose queue page the callbacks capability adds to the desk)."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class DeskCapability(Capability):
    name = "desk"
    order = 60  # after the API routers; before the board, whose pages share the desk's session
    live_topics = ("callbacks", "case")

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.desk import mount_desk

        mount_desk(app, runtime.config)
