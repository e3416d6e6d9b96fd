"""Queue presence as a capability: the operator queue follows who is signed in at the desk.

* the link ``presence`` (:class:`bridge.presence.link.PresenceLink`): reconciles Asterisk's queue
  members with the desk sessions after every AMI login, on every change and every few seconds;
* its AMI subscription (the queue's member and caller events) and listener (the board);
* the operator's panel on ``/desk/`` (pause with a reason, resume), the supervisors' page
  ``/desk/queue`` and the desk stream's heartbeat (:mod:`bridge.presence.pages`);
* ``GET /api/v1/queue``, ``POST /api/v1/presence/pause`` and ``/resume`` (:mod:`bridge.presence.api`);
* live topic ``presence``.

The sessions themselves (sign-in, sign-out, the server-side end) are :mod:`bridge.presence.service`,
used by the shared web layer (:mod:`bridge.web.sessions`) whether or not this capability runs.
"""
from __future__ import annotations

from bridge.capability import AmiSubscription, Capability, Runtime
from bridge.i18n import N_
from bridge.presence.queue import EVENTS

QUEUE_LINK_LABEL = N_("Queue")
PANEL_AREA = "desk-panel"   # panels on the desk's main page (bridge.desk templates)


class PresenceCapability(Capability):
    name = "presence"
    order = 65   # after the PBX link (40) and the desk's pages (60); before callbacks (80), which pause through it
    ami = AmiSubscription(events=EVENTS)
    live_topics = ("presence",)

    def __init__(self) -> None:
        self.link = None

    def links(self, runtime: Runtime):
        from bridge.presence.link import PresenceLink

        self.link = PresenceLink(runtime.db, runtime.config, runtime.live, runtime.links.get("pbx"))
        return (("presence", self.link),)

    def ami_listeners(self, runtime: Runtime):
        # Gathered before the links are built: the listener finds the link at each event.
        def queue_events(event: dict[str, str]) -> None:
            if self.link is not None:
                self.link.on_ami_event(event)

        return (queue_events,)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.presence import api, pages
        from bridge.web.site import PageLink, add_page_link, add_stream_watcher
        from bridge.web.templates import look_of

        app.include_router(api.router)
        look = look_of(app, "desk")
        if look is None:
            return
        app.state.presence_templates = look.templates(pages.TEMPLATES)
        app.include_router(pages.router)
        add_stream_watcher(app, pages.stream_watcher())
        add_page_link(app, PageLink(area="desk", page="queue", path="/desk/queue", label=QUEUE_LINK_LABEL,
                                    roles=("supervisor", "admin")))
        add_page_link(app, PageLink(area=PANEL_AREA, page="presence", path="/desk/presence", label=N_("Queue")))
