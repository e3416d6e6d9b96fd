"""``mount_desk(app, config)``: the operator desk on the app made by :func:`bridge.web.app.create_app`.

Pages (all under ``/desk``), one module per concern: :mod:`~bridge.desk.signin` (``login`` /
``logout``), :mod:`~bridge.desk.calllist` (``/desk/`` with the live call pop and links to the
pages other packages add, such as the callbacks' queue), :mod:`~bridge.desk.case_pages` (``cases``, ``cases/new``,
``cases/{number}``), :mod:`~bridge.desk.recordings`, :mod:`~bridge.desk.admin` (``admin/users``,
``admin/units``) and :mod:`~bridge.desk.sse` (``events``).  Sessions, CSRF and the sign-in
throttle are the shared web layer's (:mod:`bridge.web.site`).
"""
from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from bridge.config import Config
from bridge.desk import admin, calllist, case_pages, recordings, signin, sse
from bridge.desk.access import RoleRefused, SignInRequired
from bridge.desk.queries import DESK_ROLES
from bridge.desk.rendering import DESK_LOOK, STATIC, render_error
from bridge.i18n import N_, request_locale, translations
from bridge.web.site import PageLink, add_page_link, install_site, register_error_page, register_start_page
from bridge.web.templates import register_look
from bridge.web.throttle import SignInThrottle

SIGN_IN_PATH = "/desk/login"
MY_CALLS_LINK = PageLink(area="desk", page="mycalls", path="/desk/calls/mine", label=N_("My calls today"),
                         summary=N_("The calls you answered today: file a case from each, or see what was filed."))


def mount_desk(app: FastAPI, config: Config, *, throttle: SignInThrottle | None = None) -> None:
    """Add the desk to ``app``: static files, error pages, the pages and the SSE stream (before it starts)."""
    install_site(app, config)
    if throttle is not None:
        app.state.desk_throttle = throttle
    app.mount("/desk/static", StaticFiles(directory=str(STATIC)), name="desk-static")
    for module in (sse, signin, calllist, recordings, case_pages, admin):
        app.include_router(module.router)
    register_start_page(app, DESK_ROLES, "/desk/", sign_in=SIGN_IN_PATH)
    register_error_page(app, "/desk", render_error)
    register_look(app, "desk", DESK_LOOK)  # for other capabilities' desk pages
    add_page_link(app, MY_CALLS_LINK)

    @app.get("/desk", include_in_schema=False)
    async def desk_root() -> Response:
        return RedirectResponse("/desk/", status_code=307)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        if request.headers.get("hx-request") == "true" or "text/event-stream" in request.headers.get("accept", ""):
            return Response(status_code=401, headers={"HX-Redirect": SIGN_IN_PATH})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target)}", status_code=303)

    @app.exception_handler(RoleRefused)
    async def _role(request: Request, _exc: RoleRefused) -> Response:
        _ = translations(request_locale(request)).gettext
        return render_error(request, 403, _("Your account may not use this page."))


__all__ = ["mount_desk"]
