"""Which locale a request gets: the API by Accept-Language, else the site's; the desk by ?lang, the session, then as the API."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from bridge.cases import messages
from bridge.i18n import header_locale, pick_locale, request_locale
from bridge.web import errors


def _request(*, query: str = "", accept: str | None = None, site: str | None = "zh_CN",
             session: dict | None = None) -> Request:
    config = SimpleNamespace(site=SimpleNamespace(locale=site)) if site else None
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(),
             "headers": [(b"accept-language", accept.encode())] if accept else [],
             "app": SimpleNamespace(state=SimpleNamespace(config=config))}
    if session is not None:
        scope["session"] = session
    return Request(scope)


def test_one_implementation():
    assert messages.pick_locale is pick_locale
    assert errors.request_locale is header_locale  # the API's 422 route (moved from bridge.cases.api)


@pytest.mark.parametrize("accept, site, expected", [
    (None, "zh_CN", "zh_CN"), (None, "en", "en"), (None, None, "zh_CN"), (None, "fr", "zh_CN"),
    ("en-US,en;q=0.9", "zh_CN", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "en", "zh_CN"), ("fr", "en", "en"),
    ("fr, en;q=0.5", "zh_CN", "en"),
])
def test_api_locale_is_accept_language_else_the_site(accept, site, expected):
    assert header_locale(_request(accept=accept, site=site)) == expected


def test_desk_locale_from_query_then_session_then_header():
    session: dict = {}
    assert request_locale(_request(query="lang=en", session=session)) == "en"
    assert session == {"lang": "en"}
    assert request_locale(_request(accept="zh-CN", session=session)) == "en"  # remembered
    assert request_locale(_request(query="lang=zh_CN", accept="en", session=session)) == "zh_CN"
    assert request_locale(_request(query="lang=xx", accept="en", session={})) == "en"
    assert request_locale(_request(site="en")) == "en"  # no session middleware: still works
    assert request_locale(_request(query="lang=en")) == "en"
