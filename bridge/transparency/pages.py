"""``GET /transparency`` (no sign-in, the platform's colours) and ``GET /transparency.json``.

``?period=this_month`` (the default), ``last_month`` or ``this_year``, in days of the site's zone;
``?lang=`` switches the page's language like the public board.  The figures are the cached ones of
:mod:`bridge.transparency.public`; the page says when they were computed."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bridge.i18n import LOCALES, request_locale, translations
from bridge.site.periods import NAMED, THIS_MONTH, named_period
from bridge.transparency.public import DEFINITIONS, public_figures
from bridge.web.periods import PERIOD_LABELS, site_clock
from bridge.web.templates import Templates

router = APIRouter(include_in_schema=False)


def duration_text(seconds: float | None, gettext) -> str:
    """A median duration as people read it: minutes, hours and minutes, or days and hours."""
    if seconds is None:
        return "–"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return gettext("%(minutes)d min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return gettext("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    days, hours = divmod(hours, 24)
    return gettext("%(days)d d %(hours)d h") % {"days": days, "hours": hours}


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _values(request: Request, gettext) -> dict[str, Any]:
    asked = request.query_params.get("lang")

    def period_url(name: str) -> str:
        params = {"period": name, **({"lang": asked} if asked in LOCALES else {})}
        return f"/transparency?{urlencode(params)}"

    return {"period_url": period_url, "percent": percent, "duration": lambda s: duration_text(s, gettext)}


TEMPLATES = Templates(Path(__file__).resolve().parent / "templates", extra=_values)


def _period(request: Request):
    name = request.query_params.get("period") or THIS_MONTH
    if name not in NAMED:
        return None, name
    today = site_clock(request.app).today()
    return named_period(name, today), name


def figure_definitions(locale: str) -> dict[str, dict[str, str]]:
    tr = translations(locale)
    return {key: {"label": tr.gettext(label), "definition": tr.gettext(text)}
            for key, (label, text) in DEFINITIONS.items()}


@router.get("/transparency")
async def transparency_page(request: Request) -> Response:
    period, name = _period(request)
    locale = request_locale(request)
    options = [(option, PERIOD_LABELS[option]) for option in NAMED]
    if period is None:
        return TEMPLATES.render(request, "transparency.html", 422, report=None, asked=name[:40], chosen=None,
                                options=options, definitions=figure_definitions(locale))
    report = await public_figures(request.app, period)
    return TEMPLATES.render(request, "transparency.html", report=report, chosen=name, options=options,
                            definitions=figure_definitions(locale))


@router.get("/transparency.json")
async def transparency_json(request: Request) -> Response:
    period, name = _period(request)
    locale = request_locale(request)
    if period is None:
        message = translations(locale).gettext("The period must be one of: %(choices)s.") % {"choices": ", ".join(NAMED)}
        return JSONResponse({"detail": [{"field": "period", "message": message, "code": "invalid_value"}]}, 422)
    report = await public_figures(request.app, period)
    return JSONResponse({**report, "definitions": figure_definitions(locale)}, headers={"Cache-Control": "public, max-age=60"})
