"""The operators' callback queue on the desk (``/desk/callbacks``): mine, then the shared pool,
what to say on each call, placing the call, recording its outcome; supervisors see every task.

Its pages live here, not in ``bridge/desk`` (``bridge`` never imports ``callbacks``), and share the
desk's through the web layer's extension points: the session sign-in
(:func:`bridge.web.sessions.page_user`, answered by the desk's sign-in redirect), CSRF, the
desk's look (:func:`bridge.web.templates.look_of`), its menu (:func:`bridge.web.site.add_page_link`)
and its live stream ``/desk/events`` (topic ``callbacks``).  Calls go through
``app.state.callback_placer`` (a :class:`callbacks.placing.Placer` the daemon provides); without
one, "call" answers that the PBX is down.
"""
from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI

from bridge.i18n import N_
from bridge.web.site import PageLink, add_page_link
from bridge.web.templates import look_of
from callbacks.tasks import CallbackPolicy

log = structlog.get_logger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
QUEUE_LINK = PageLink(area="desk", page="callbacks", path="/desk/callbacks", label=N_("Callbacks"),
                      summary=N_("Callers to phone back, yours first, then the shared pool: answers to tell "
                                 "and missed calls."))


def mount_queue(app: FastAPI, policy: CallbackPolicy) -> None:
    """Add the queue's pages to ``app`` and its link to the desk's menu (the desk is mounted first)."""
    from callbacks.desk import routes

    look = look_of(app, "desk")
    if look is None:
        log.info("callbacks.no_desk", detail="the desk is not mounted: no callback queue pages")
        return
    if getattr(app.state, "callback_policy", None) is None:
        app.state.callback_policy = policy
    app.state.callback_templates = look.templates(TEMPLATES)
    app.include_router(routes.router)
    add_page_link(app, QUEUE_LINK)


__all__ = ["QUEUE_LINK", "mount_queue"]
