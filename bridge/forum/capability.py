"""The forum as a capability: the forum link (outbox, polling, deadlines), the builtin board's
API and pages, the Discourse webhook (when the daemon runs a Discourse link), health "forum",
live topics "case" and "board".  Answers reach other capabilities as the domain event
``case_answered`` (``bridge.domain_events``), written by the forum service."""
from __future__ import annotations

from bridge.capability import Capability, Runtime


class ForumCapability(Capability):
    name = "forum"
    order = 70
    health_components = ("forum",)
    live_topics = ("case", "board")

    def links(self, runtime: Runtime):
        from bridge.forum.link import ForumLink

        return (("forum", ForumLink(runtime.config, runtime.db, runtime.health, runtime.live,
                                    forum=_discourse(runtime.config))),)

    def mount(self, app, runtime: Runtime) -> None:
        from bridge.forum.builtin.api import router
        from bridge.forum.builtin.pages import mount_board

        app.include_router(router)
        mount_board(app)  # after the desk: spokespeople's pages share its session
        link = runtime.links.get("forum")
        if runtime.config.forum.backend == "discourse" and link is not None:
            from bridge.forum.discourse.webhook import router_from_config

            # Discourse's webhooks feed the same event path as polling (applied once by event id).
            app.include_router(router_from_config(runtime.config, forum=link.forum, sink=link.apply_events))


def _discourse(config):
    """The Discourse backend when configured; None lets the forum link serve the builtin board."""
    if config.forum.backend != "discourse":
        return None
    from bridge.forum.discourse import DiscourseForum

    return DiscourseForum.from_config(config)
