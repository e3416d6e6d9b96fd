"""How the desk's pages look: its templates (``bridge/desk/templates``) on the shared factory
(:class:`bridge.web.templates.Templates`), the labels of states, dispositions, channels and roles,
and :func:`render` (a page as an HTMLResponse, ``Cache-Control: no-store``).

:data:`DESK_LOOK` is registered for other capabilities' pages (their templates extend ``base.html``:
:func:`bridge.web.templates.look_of`); the menu and the main page show the links they add to the
area "desk" (:func:`bridge.web.site.add_page_link`)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from bridge.cases.validation import display_phone
from bridge.i18n import N_
from bridge.pbx.recordings import audible_recording, recordings_dir
from bridge.pbx.waits import short_duration, waits_text
from bridge.web.sessions import signed_in
from bridge.web.site import page_links
from bridge.web.templates import Look

HERE = Path(__file__).resolve().parent
DESK_AREA = "desk"  # the area of the desk's menu (bridge.web.site.PageLink)
STATIC = HERE / "static"

STATE_LABELS = {
    "queued": N_("Queued"), "posted": N_("Posted"), "accepted": N_("Accepted"),
    "forwarded": N_("Forwarded"), "answered": N_("Answered"), "reopened": N_("Reopened"),
    "closed": N_("Closed"),
}
STATE_COLOUR = {"queued": "blue", "posted": "blue", "accepted": "green", "forwarded": "green",
                "reopened": "green", "answered": "answered", "closed": "closed"}
DISPOSITION_LABELS = {
    "in_progress": N_("In progress"), "answered": N_("Answered call"), "abandoned": N_("Hung up unanswered"),
    "after_hours_message": N_("After-hours message"), "status_line": N_("Status line"), "failed": N_("Failed"),
    "hung_up_in_menu": N_("Hung up in the menu"),
}
CHANNEL_LABELS = {"phone": N_("Phone"), "walk_in": N_("Walk-in"), "message": N_("Message"), "email": N_("Email")}
# The case's best time to call back (bridge.db.models.CallbackBestTime), as the form's choices read.
BEST_TIME_LABELS = {"morning": N_("Morning"), "afternoon": N_("Afternoon"), "evening": N_("Evening"),
                    "any": N_("Any time")}
ROLE_LABELS = {"operator": N_("Operator"), "supervisor": N_("Supervisor"), "admin": N_("Administrator"),
               "spokesperson": N_("Spokesperson")}


def now() -> datetime:
    return datetime.now(timezone.utc)


def duration(seconds: float | None, _) -> str:
    if seconds is None:
        return ""
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours >= 24:
        return _("%(days)d d %(hours)d h") % {"days": hours // 24, "hours": hours % 24}
    if hours:
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}



def _desk_values(request: Request, _) -> dict[str, Any]:
    return {
        "desk_pages": page_links(request.app, DESK_AREA),
        "desk_panels": page_links(request.app, "desk-panel"),  # panels on the main page (queue presence)
        "state_label": lambda s: _(STATE_LABELS.get(s, s)), "state_colour": lambda s: STATE_COLOUR.get(s, ""),
        "disposition_label": lambda d: _(DISPOSITION_LABELS.get(d, d)),
        "channel_label": lambda c: _(CHANNEL_LABELS.get(c, c)),
        "best_time_label": lambda b: _(BEST_TIME_LABELS.get(b, b)),
        "role_label": lambda r: _(ROLE_LABELS.get(r, r)),
        "duration": lambda s: duration(s, _), "now": now(),
        "short_duration": lambda s: short_duration(s, _), "waits_text": lambda m, q: waits_text(m, q, _),
        # recordings are offered only when they hold sound (else "no recording")
        "audible": lambda *names: audible_recording(recordings_dir(request.app.state.config), *names) is not None,
    }


DESK_LOOK = Look(HERE / "templates", extra=_desk_values, filters={"phone": lambda v: display_phone(v) if v else ""})
TEMPLATES = DESK_LOOK.templates()


def render(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    return TEMPLATES.render(request, name, status_code, **values)


def render_error(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The desk's error page (registered for ``/desk`` with the shared web layer)."""
    return render(request, "error.html", status_code=status_code, message=message, signed_in=signed_in(request))
