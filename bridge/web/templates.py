"""The pages' Jinja2 templates: one factory with the gettext setup, each capability its own folder.

``Templates(folder)`` is a capability's environment (autoescaped HTML, the ``i18n`` extension)
and its render functions.  A capability whose pages others may join (the desk) registers its
:class:`Look` (its template folder with the base layout, its values and filters) with
:func:`register_look`; another capability (callbacks) renders its own templates in that look
with ``look_of(app, "desk").templates(its_folder)``: its folder first, then the look's.  Every page gets the same base context (:meth:`Templates.context`):
the request's language (:func:`bridge.i18n.request_locale`) with ``_``/``gettext``/``ngettext``,
``html_lang``, the CSRF token, the site's name, ``localtime`` (in the site's zone) and
``lang_url``; a capability adds its own values with ``extra(request, gettext)``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bridge.i18n import HTML_LANG, request_locale, translations
from bridge.web.csrf import CSRF_FIELD, csrf_token

Extra = Callable[[Request, Callable[[str], str]], dict[str, Any]]


def template_environment(folder: Path | Sequence[Path]) -> Environment:
    """The Jinja2 environment of a capability's template folder (or folders, first found wins)."""
    folders = [folder] if isinstance(folder, Path) else list(folder)
    return Environment(loader=FileSystemLoader([str(f) for f in folders]), autoescape=select_autoescape(["html"]),
                       extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)


class Templates:
    def __init__(self, folder: Path | Sequence[Path], extra: Extra | None = None) -> None:
        self.env = template_environment(folder)
        self.extra = extra

    def context(self, request: Request, **values: Any) -> dict[str, Any]:
        config = request.app.state.config
        locale = request_locale(request)
        tr = translations(locale)
        zone = config.site.zone

        def localtime(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
            if value is None or value == "":
                return ""
            if isinstance(value, str):
                value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return value.astimezone(zone).strftime(fmt)

        def lang_url(lang: str) -> str:
            params = dict(request.query_params)
            params["lang"] = lang
            return f"{request.url.path}?{urlencode(params)}"

        base = {"request": request, "_": tr.gettext, "gettext": tr.gettext, "ngettext": tr.ngettext,
                "locale": locale, "html_lang": HTML_LANG.get(locale, "zh-CN"), "csrf": csrf_token(request),
                "csrf_field": CSRF_FIELD, "site_name": config.site.name, "localtime": localtime,
                "lang_url": lang_url, "user": None}
        if self.extra is not None:
            base.update(self.extra(request, tr.gettext))
        base.update(values)
        return base

    def text(self, request: Request, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(self.context(request, **values))

    def render(self, request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.text(request, name, **values), status_code=status_code,
                            headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Look:
    """How a capability's pages look, for other capabilities' pages to share."""

    folder: Path
    extra: Extra | None = None
    filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)

    def templates(self, *folders: Path) -> Templates:
        """Templates of ``folders`` (looked up first), then the look's folder, with its values and filters."""
        templates = Templates([*folders, self.folder], extra=self.extra)
        templates.env.filters.update(self.filters)
        return templates


def register_look(app: FastAPI, name: str, look: Look) -> None:
    looks = getattr(app.state, "looks", None)
    if looks is None:
        looks = app.state.looks = {}
    looks[name] = look


def look_of(app: FastAPI, name: str) -> Look | None:
    """The look registered as ``name`` (None: that capability is not mounted on this app)."""
    return getattr(app.state, "looks", {}).get(name)


__all__ = ["Look", "Templates", "look_of", "register_look", "template_environment"]
