"""Sign-in, sessions, CSRF, throttling, roles and languages of the desk (HTTP level, SQLite and PostgreSQL)."""
from __future__ import annotations

from fastapi.testclient import TestClient

from bridge.config import validate
from bridge.health import Health
from bridge.web.app import create_app
from bridge.web.sessions import SESSION_COOKIE
from bridge.web.throttle import SignInThrottle
from tests.desk.conftest import PASSWORD, SECRETS, csrf_of, sign_in


def test_pages_need_sign_in(client):
    for path in ("/desk/", "/desk/cases", "/desk/cases/new?call=1", "/desk/admin/users"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/desk/login?next=/desk/")
    assert client.get("/desk/events").status_code == 303
    assert client.get("/desk/cases/rows", headers={"HX-Request": "true"}).status_code == 401


def test_login_page_is_chinese_utf8_by_default(client):
    page = client.get("/desk/login")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<meta charset="utf-8">' in page.text
    assert '<html lang="zh-CN">' in page.text
    assert "登录话务台" in page.text and "用户名" in page.text


def test_english_by_query_and_by_accept_language(client):
    assert "Sign in to the operator desk" in client.get("/desk/login?lang=en").text
    # remembered in the session
    assert '<html lang="en">' in client.get("/desk/login").text
    assert "登录话务台" in client.get("/desk/login?lang=zh_CN").text
    fresh = client.get("/desk/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "登录话务台" in fresh.text  # the session's choice wins over the header
    client.cookies.clear()
    assert "Sign in to the operator desk" in client.get("/desk/login",
                                                        headers={"Accept-Language": "en-GB,en;q=0.9"}).text


def test_sign_in_sets_a_signed_httponly_lax_cookie_and_signs_out(client):
    response = sign_in(client, "operator")
    assert response.status_code == 303 and response.headers["location"] == "/desk/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "path=/desk" in cookie.lower()
    assert "secure" not in cookie.lower()  # web.secure_cookies = false in this config
    desk = client.get("/desk/")
    assert desk.status_code == 200
    assert "分机 8001" in desk.text and "operator person" in desk.text

    token = csrf_of(desk.text)
    out = client.post("/desk/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"].startswith("/desk/login")
    assert client.get("/desk/").status_code == 303
    assert "您已退出登录" in client.get("/desk/login?bye=1").text


def test_public_pages_leave_the_desk_session_alone(client):
    """The session cookie is scoped to /desk: a public page (the transparency page, the board,
    a 404 outside the desk) must not answer with a cookie of its own, which would replace the
    signed-in one and sign the supervisor out."""
    assert sign_in(client, "supervisor").status_code == 303
    for public in ("/transparency", "/board/", "/no-such-page"):
        answer = client.get(public)
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", ""), public
    assert client.get("/desk/cases").status_code == 200


def test_secure_cookie_follows_config(db, people, monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = validate({"web": {"secure_cookies": True}}, environ=SECRETS, base_dir=tmp_path)
    app = create_app(config, db, Health())
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        response = sign_in(client, "operator")
        assert response.status_code == 303
        assert "secure" in response.headers["set-cookie"].lower()


def test_tampered_cookie_is_not_a_session(client):
    sign_in(client, "operator")
    value = client.cookies.get(SESSION_COOKIE)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"), path="/desk")
    assert client.get("/desk/").status_code == 303


def test_wrong_password_and_unknown_user(client):
    for username in ("operator", "nobody"):
        response = sign_in(client, username, "wrong password!")
        assert response.status_code == 401
        assert "用户名或密码不正确。" in response.text
        assert client.get("/desk/").status_code == 303


def test_extension_chosen_at_sign_in(client):
    response = sign_in(client, "operator", extension="8009")
    assert response.status_code == 303
    assert "分机 8009" in client.get("/desk/").text
    bad = sign_in(client, "supervisor", extension="12ab")
    assert bad.status_code == 422 and "分机号应为 2 到 8 位数字。" in bad.text


def test_throttling_per_username_with_time_to_retry(client, clock):
    for _ in range(4):
        assert sign_in(client, "operator", "wrong password!").status_code == 401
    locked = sign_in(client, "operator", "wrong password!")
    assert locked.status_code == 429
    assert "登录失败次数过多，请在" in locked.text and "之后再试（60 秒后）" in locked.text
    # the right password is refused too while locked, without being checked
    assert sign_in(client, "operator", PASSWORD).status_code == 429
    # another user from the same address is not locked (the address limit is higher)
    assert sign_in(client, "supervisor").status_code == 303
    clock.now += 61
    assert sign_in(client, "operator").status_code == 303


def test_throttling_per_address(desk_app, clock):
    desk_app.state.desk_throttle = SignInThrottle(clock=clock, user_limit=5, ip_limit=6)
    with TestClient(desk_app, follow_redirects=False) as client:
        for i in range(5):
            assert sign_in(client, f"guess{i}", "wrong password!").status_code == 401
        assert sign_in(client, "guess9", "wrong password!").status_code == 429
        assert sign_in(client, "operator").status_code == 429
        clock.now += 60.5
        assert sign_in(client, "operator").status_code == 303


def test_csrf_is_required_on_every_form(client):
    page = client.get("/desk/login")
    refused = client.post("/desk/login", data={"username": "operator", "password": PASSWORD})
    assert refused.status_code == 403 and "表单已过期" in refused.text
    forged = client.post("/desk/login", data={"csrf_token": "forged", "username": "operator", "password": PASSWORD})
    assert forged.status_code == 403
    assert sign_in(client, "operator").status_code == 303
    assert client.post("/desk/logout").status_code == 403
    assert client.post("/desk/cases", data={"title": "x"}).status_code == 403
    assert client.post("/desk/admin/users", data={"action": "disable", "username": "operator"}).status_code == 403
    # the token may come in the htmx header instead of the form
    token = csrf_of(client.get("/desk/").text)
    assert token != csrf_of(page.text)  # a new token after sign-in
    assert client.post("/desk/logout", headers={"X-CSRF-Token": token}).status_code == 303


def test_roles(client):
    refused = sign_in(client, "spokesperson")
    assert refused.status_code == 403
    assert "此账号（单位发言人）不能使用话务台。" in refused.text
    assert client.get("/desk/").status_code == 303

    assert sign_in(client, "operator").status_code == 303
    assert client.get("/desk/admin/users").status_code == 403
    assert "您的账号无权使用此页面。" in client.get("/desk/admin/units").text

    assert sign_in(client, "supervisor").status_code == 303
    assert client.get("/desk/cases").status_code == 200
    assert client.get("/desk/admin/users").status_code == 403

    assert sign_in(client, "admin").status_code == 303
    users = client.get("/desk/admin/users")
    assert users.status_code == 200 and "spokesperson" in users.text
    units = client.get("/desk/admin/units").text
    assert "市公安局" in units and "<td>城管 城管局 综合执法" in units  # the synonyms the picker finds


def test_disabled_user_loses_the_session(client, db):
    from bridge.accounts.service import disable_user

    assert sign_in(client, "operator").status_code == 303
    with db.session() as session:
        disable_user(session, "operator")
    assert client.get("/desk/").status_code == 303


def test_admin_adds_and_disables_a_user(client):
    assert sign_in(client, "admin").status_code == 303
    token = csrf_of(client.get("/desk/admin/users").text)
    added = client.post("/desk/admin/users", data={"csrf_token": token, "action": "add", "username": "xiaoli",
                                                   "role": "operator", "extension": "8003",
                                                   "password": "long enough password"})
    assert added.status_code == 200 and "已添加用户 xiaoli" in added.text
    bad = client.post("/desk/admin/users", data={"csrf_token": token, "action": "add", "username": "x",
                                                 "role": "operator", "password": "long enough password"})
    assert bad.status_code == 422
    client2 = TestClient(client.app, follow_redirects=False)
    assert sign_in(client2, "xiaoli", "long enough password").status_code == 303
    gone = client.post("/desk/admin/users", data={"csrf_token": token, "action": "disable", "username": "xiaoli"})
    assert "用户 xiaoli 已停用" in gone.text
    assert client2.get("/desk/").status_code == 303


def test_admin_page_refuses_a_taken_extension_naming_its_holder(client, db):
    from html import unescape

    from bridge.accounts.service import get_user

    assert sign_in(client, "admin").status_code == 303
    token = csrf_of(client.get("/desk/admin/users").text)
    taken = client.post("/desk/admin/users", data={"csrf_token": token, "action": "add", "username": "xiaoli",
                                                   "role": "operator", "extension": "8001",
                                                   "password": "long enough password"})
    assert taken.status_code == 422
    assert "请检查“分机号”：分机 8001 已由用户 'operator' 使用" in unescape(taken.text)
    english = client.post("/desk/admin/users?lang=en", data={
        "csrf_token": token, "action": "add", "username": "xiaoli", "role": "operator", "extension": "8001",
        "password": "long enough password"})
    assert "Check the field “Extension”: extension 8001 is already 'operator''s" in unescape(english.text)
    with db.session() as session:
        assert get_user(session, "xiaoli") is None
