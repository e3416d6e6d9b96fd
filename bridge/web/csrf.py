"""CSRF tokens of the pages' forms (the desk's and the spokespeople's).

Every form carries the session's token in a hidden ``csrf_token`` field, and htmx/fetch
requests send it in the ``X-CSRF-Token`` header (the page's ``<body hx-headers>``);
:func:`check_csrf` (a route dependency) refuses an unsafe request without it by raising
:class:`CsrfRefused`, which the shared web layer answers with 403 (:mod:`bridge.web.site`).
"""
from __future__ import annotations

import hmac
import secrets

from fastapi import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CsrfRefused(Exception):
    """An unsafe request without the session's CSRF token (answered 403)."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


async def check_csrf(request: Request) -> None:
    """Raise CsrfRefused unless the request's token (form field or header) is the session's."""
    expected = request.session.get(CSRF_FIELD)
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached on the request: the endpoint reads it again for free
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        raise CsrfRefused()


__all__ = ["CSRF_FIELD", "CSRF_HEADER", "CsrfRefused", "check_csrf", "csrf_token"]
