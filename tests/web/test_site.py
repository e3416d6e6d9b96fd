"""``/`` leads somewhere: signed out to the desk's sign-in, signed in to the role's start page; the
sign-in page links the public pages the app serves (HTTP level, SQLite and PostgreSQL)."""
from __future__ import annotations

import re

import pytest

from bridge.accounts.service import disable_user
from tests.web.conftest import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def land(client) -> str:
    """Follow the redirects from ``/``; the path where they end."""
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/desk/start"
    start = client.get("/desk/start")
    assert start.status_code == 303
    return start.headers["location"]


def desk_sign_in(client, username: str) -> None:
    page = client.get("/desk/login")
    response = client.post("/desk/login", data={"csrf_token": CSRF.search(page.text).group(1), "username": username,
                                                "password": PASSWORD, "next": "/desk/"})
    assert response.status_code == 303, response.text


def board_sign_in(client, username: str) -> None:
    page = client.get("/desk/board/login")
    response = client.post("/desk/board/login", data={"csrf_token": CSRF.search(page.text).group(1),
                                                      "username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text


def test_signed_out_lands_on_the_desk_sign_in(client):
    assert land(client) == "/desk/login"
    assert client.get("/desk/login").status_code == 200


@pytest.mark.parametrize("role", ["operator", "supervisor", "admin"])
def test_hotline_staff_land_on_the_desk(client, role):
    desk_sign_in(client, role)
    assert land(client) == "/desk/"
    assert client.get("/desk/").status_code == 200


def test_a_spokesperson_lands_on_the_unit_board(client):
    board_sign_in(client, "spokesperson")
    assert land(client) == "/desk/board/"
    assert client.get("/desk/board/").status_code == 200


def test_a_disabled_user_lands_on_the_sign_in(client, db):
    desk_sign_in(client, "operator")
    with db.session() as session:
        disable_user(session, "operator")
    assert land(client) == "/desk/login"


def test_sign_in_links_the_public_board_and_transparency(client):
    page = client.get("/desk/login")
    assert '<a href="/desk/board/login">单位网络发言人请由此登录</a>' in page.text  # spokespeople sign in there
    assert client.get("/board/").status_code == 200 and client.get("/transparency").status_code == 200
    page = client.get("/desk/login?lang=en")
    links = re.search(r'<nav class="public-pages".*?</nav>', page.text, re.S).group(0)
    assert 'href="/board/"' in links and 'href="/transparency">Transparency</a>' in links


def test_the_site_icon_is_served_and_linked(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.headers["content-type"] == "image/x-icon"
    assert ico.content[:4] == b"\x00\x00\x01\x00" and b"PNG" in ico.content[:64]  # an ICO holding a PNG
    assert "max-age" in ico.headers["cache-control"]
    svg = client.get("/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "script" not in svg.text
    for page in ("/desk/login", "/board/", "/desk/board/login"):
        html = client.get(page).text
        assert '<link rel="icon" href="/favicon.svg"' in html and '<link rel="icon" href="/favicon.ico"' in html, page


def test_the_desk_error_page_offers_the_way_back_once_signed_in(client):
    """Signed out, an error page offers the sign-in; signed in, the way back (the role's start page)."""
    stale = {"csrf_token": "stale"}
    signed_out = client.post("/desk/logout", data=stale)
    assert signed_out.status_code == 403
    assert 'href="/desk/login"' in signed_out.text and 'href="/desk/start"' not in signed_out.text
    desk_sign_in(client, "operator")
    missing = client.get("/desk/cases/2026999999")
    assert missing.status_code == 404 and 'href="/desk/start"' in missing.text
    assert "登录</a>" not in missing.text and 'href="/desk/login"' not in missing.text
    refused = client.get("/desk/admin/users")
    assert refused.status_code == 403 and "您的账号无权使用此页面。" in refused.text
    assert 'href="/desk/start"' in refused.text and 'href="/desk/login"' not in refused.text
    expired = client.post("/desk/logout", data=stale)
    assert expired.status_code == 403 and 'href="/desk/start"' in expired.text
    assert "返回工作台" in expired.text and "登录</a>" not in expired.text
