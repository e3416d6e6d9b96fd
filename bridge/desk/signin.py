"""The desk's sign-in: ``GET/POST /desk/login`` and ``POST /desk/logout``.

The sign-in page also links what a visitor may read without an account (the public board,
``/transparency``), each only when the app serves it (a capability not installed is not linked).
"""
from __future__ import annotations

from datetime import datetime, timezone

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from bridge.accounts.service import EXTENSION_PATTERN, sign_in
from bridge.desk.queries import DESK_ROLES
from bridge.desk.rendering import ROLE_LABELS, render
from bridge.i18n import N_, request_locale, translations
from bridge.presence.service import ExtensionTaken
from bridge.web.csrf import check_csrf
from bridge.web.sessions import end_session, start_session
from bridge.web.site import serves
from bridge.web.throttle import client_ip, sign_in_throttle

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/desk", include_in_schema=False)

# What a visitor may read without signing in, linked from the sign-in page when the app serves it.
PUBLIC_PAGES = (("/board/", N_("Public board")), ("/transparency", N_("Transparency")))
# Spokespeople sign in on their unit's board, not here (``/`` sends everyone signed out here first).
SPOKESPEOPLE_SIGN_IN = "/desk/board/login"


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a desk page of this site, else the desk."""
    if value and value.startswith("/desk") and not value.startswith("//") and "\\" not in value:
        return value
    return "/desk/"


def _login_page(request: Request, status_code: int = 200, **values) -> Response:
    links = [(path, label) for path, label in PUBLIC_PAGES if serves(request.app, path)]
    spokespeople = SPOKESPEOPLE_SIGN_IN if serves(request.app, SPOKESPEOPLE_SIGN_IN) else None
    return render(request, "login.html", status_code=status_code, public_pages=links,
                  spokespeople_sign_in=spokespeople, **values)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next=safe_next(next), username="", extension="", error=None)


def _lockout_message(_, until: float, now: float, zone) -> str:
    """When to retry, in the site's zone (``until`` and ``now`` are the throttle's clock, epoch seconds)."""
    local = datetime.fromtimestamp(until, timezone.utc).astimezone(zone)
    seconds = max(1, int(round(until - now)))
    return _("Too many failed sign-ins. Try again at %(time)s (in %(seconds)d seconds).") % {
        "time": local.strftime("%H:%M:%S"), "seconds": seconds}


@router.post("/login", dependencies=[Depends(check_csrf)])
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username") or "").strip().lower()
    password = str(form.get("password") or "")
    extension = str(form.get("extension") or "").strip()
    next_url = safe_next(str(form.get("next") or ""))
    throttle = sign_in_throttle(request.app)
    zone = request.app.state.config.site.zone
    _ = translations(request_locale(request)).gettext
    keys = throttle.keys(username, client_ip(request))

    def again(message: str, status: int) -> Response:
        return _login_page(request, status_code=status, next=next_url, username=username, extension=extension,
                           error=message)

    locked = throttle.locked_until(keys)
    if locked is not None:
        return again(_lockout_message(_, locked, throttle.clock(), zone), 429)
    if extension and not EXTENSION_PATTERN.match(extension):
        return again(_("The extension must be 2 to 8 digits."), 422)
    if not username or not password:
        return again(_("Enter your username and password."), 422)

    db = request.app.state.db
    user = await db.run(sign_in, db, username, password)
    if user is None:
        locked = throttle.failure(keys)
        if locked is not None:
            return again(_lockout_message(_, locked, throttle.clock(), zone), 429)
        return again(_("Wrong username or password."), 401)
    throttle.success(username)
    if user.role not in DESK_ROLES:
        return again(_("This account (%(role)s) may not use the operator desk.")
                     % {"role": _(ROLE_LABELS[user.role.value])}, 403)
    try:
        await start_session(request, user, extension=extension or user.extension or None)
    except ExtensionTaken as taken:
        log.info("desk.extension_taken", user_id=user.id, extension=taken.extension, holder=taken.holder_username)
        return again(_("Extension %(ext)s is in use: %(name)s is signed in at it. Choose your own extension, "
                       "or ask %(name)s (or a supervisor) to sign out there first.")
                     % {"ext": taken.extension, "name": taken.holder_name}, 409)
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
async def logout(request: Request) -> Response:
    await end_session(request)
    return RedirectResponse("/desk/login?bye=1", status_code=303)

