"""What the site's pages share beyond any one capability: ``/``, the start page, the CSRF refusal.

:func:`install_site` (called by :func:`bridge.web.app.create_app` before the capabilities mount)
adds the session middleware, the sign-in throttle, the 403 answer to a refused CSRF token, and:

- ``GET /favicon.ico`` and ``/favicon.svg``: the site's icon, linked from every page's head.
- ``/static/``: the files every capability's pages share (``bridge/web/static``): the charts'
  renderer ``charts.js`` and Apache ECharts vendored beside it (``scripts/vendor-echarts``).
- ``GET /``: where a newcomer lands.  The session cookie is scoped to ``SESSION_PATH`` (``/desk``),
  so ``/`` cannot see it and hands over to ``GET /desk/start``, which can: a signed-out person
  goes to the sign-in page, a signed-in one to their role's start page.

Capabilities register what is theirs: :func:`register_start_page` (the desk: operators,
supervisors and admins, and its sign-in page; the board: spokespeople),
:func:`register_error_page` (how an error looks under a path prefix, e.g. ``/desk``) and
:func:`add_page_link` (a page added to another capability's menu, e.g. the callbacks' queue
in the desk's: :func:`page_links` lists them for that menu).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match

from bridge.config import Config
from bridge.db.models import Role
from bridge.i18n import HTML_LANG, request_locale, translations
from bridge.web.csrf import CsrfRefused
from bridge.web.sessions import SESSION_PATH, add_sessions, session_user
from bridge.web.throttle import sign_in_throttle

START_PATH = f"{SESSION_PATH}/start"
STATIC = Path(__file__).resolve().parent / "static"  # the site's icon, the charts' scripts
STATIC_PATH = "/static"

ErrorPage = Callable[[Request, int, str], Response]


@dataclass
class StartPages:
    """Where ``/`` sends people: the sign-in page, and each role's start page once signed in."""

    sign_in: str | None = None
    by_role: dict[Role, str] = field(default_factory=dict)

    def for_role(self, role: Role | None) -> str | None:
        return self.by_role.get(role) if role is not None else None


def start_pages(app: FastAPI) -> StartPages:
    found = getattr(app.state, "start_pages", None)
    if found is None:
        found = app.state.start_pages = StartPages()
    return found


def register_start_page(app: FastAPI, roles: Iterable[Role], path: str, *, sign_in: str | None = None) -> None:
    """``path`` is the start page of ``roles``; ``sign_in`` (if given) is the site's sign-in page."""
    pages = start_pages(app)
    for role in roles:
        pages.by_role[role] = path
    if sign_in is not None:
        pages.sign_in = sign_in


def register_error_page(app: FastAPI, prefix: str, render: ErrorPage) -> None:
    """Errors of requests under ``prefix`` are rendered by ``render(request, status, message)``."""
    if not hasattr(app.state, "error_pages"):
        app.state.error_pages = {}
    app.state.error_pages[prefix] = render


def error_page(request: Request, status: int, message: str) -> Response:
    """The error page of the longest registered prefix of the request's path, else a plain one."""
    pages: dict[str, ErrorPage] = getattr(request.app.state, "error_pages", {})
    path = request.url.path
    prefixes = [p for p in pages if path == p or path.startswith(p.rstrip("/") + "/")]
    if prefixes:
        return pages[max(prefixes, key=len)](request, status, message)
    lang = HTML_LANG.get(request_locale(request), "zh-CN")
    return HTMLResponse(f'<!DOCTYPE html><html lang="{lang}"><meta charset="utf-8"><title>{status}</title>'
                        f'<p role="alert">{escape(message)}</p></html>', status_code=status,
                        headers={"Cache-Control": "no-store"})


def serves(app: FastAPI, path: str) -> bool:
    """Whether the app has a GET route (or mount) for ``path``; a page links only what exists."""
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in app.router.routes)


@dataclass(frozen=True)
class PageLink:
    """A page one capability adds to another's menu (``area``: whose menu, e.g. "desk")."""

    area: str
    page: str  # the ``page`` value the page is rendered with (marks the menu entry current)
    path: str
    label: str  # a message id (N_), translated where it is shown
    summary: str = ""  # a message id said with the link on the area's main page ("": menu only)
    roles: tuple[str, ...] = ()  # the roles (Role values) shown the link; empty: everyone


def add_page_link(app: FastAPI, link: PageLink) -> None:
    """Add ``link`` to its area's menu (in the order added)."""
    links = getattr(app.state, "page_links", None)
    if links is None:
        links = app.state.page_links = []
    links.append(link)


def page_links(app: FastAPI, area: str) -> tuple[PageLink, ...]:
    return tuple(link for link in getattr(app.state, "page_links", ()) if link.area == area)


def _icon(name: str, media_type: str) -> Response:
    """The site's icon (every page links it; browsers also ask for /favicon.ico on their own)."""
    return FileResponse(STATIC / name, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


def add_stream_watcher(app: FastAPI, watcher: Callable) -> None:
    """``await watcher(request, user) -> bool`` when a page's live stream (the desk's ``/desk/events``)
    opens and every ``watcher.every_s`` seconds while it is open; False: the session ended (queue
    presence touches the sign-in: the page is alive)."""
    watchers = getattr(app.state, "stream_watchers", None)
    if watchers is None:
        watchers = app.state.stream_watchers = []
    watchers.append(watcher)


def stream_watchers(app: FastAPI) -> tuple[Callable, ...]:
    return tuple(getattr(app.state, "stream_watchers", ()))


def install_site(app: FastAPI, config: Config) -> None:
    """Sessions, the sign-in throttle, the CSRF refusal, ``/`` and the start page (before the app starts).

    Called by ``create_app``, and by each capability that has pages (once per app: later calls do nothing)."""
    if getattr(app.state, "site_installed", False):
        return
    app.state.site_installed = True
    add_sessions(app, config)
    sign_in_throttle(app)
    start_pages(app)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, _exc: CsrfRefused) -> Response:
        _ = translations(request_locale(request)).gettext
        return error_page(request, 403, _("This form has expired or did not come from this site. "
                                          "Reload the page and try again."))

    app.mount(STATIC_PATH, StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico() -> Response:
        return _icon("favicon.ico", "image/x-icon")

    @app.get("/favicon.svg", include_in_schema=False)
    async def favicon_svg() -> Response:
        return _icon("favicon.svg", "image/svg+xml")

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse(START_PATH, status_code=303)

    @app.get(START_PATH, include_in_schema=False)
    async def start(request: Request) -> Response:
        pages = start_pages(request.app)
        user = await session_user(request)
        target = pages.for_role(user.role if user is not None else None) or pages.sign_in
        if target is None:
            return Response(status_code=404)
        return RedirectResponse(target, status_code=303)


__all__ = ["START_PATH", "PageLink", "StartPages", "add_page_link", "add_stream_watcher", "stream_watchers", "error_page", "install_site", "page_links",
           "register_error_page", "register_start_page", "serves", "start_pages"]
