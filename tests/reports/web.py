"""Signing in, API tokens and the served app in the reports' HTTP and browser tests."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from bridge.config import validate
from bridge.health import Health
from bridge.web.app import create_app
from tests.desk.server import served
from tests.reports.data import PASSWORD

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "reports-test-secret", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient, username: str) -> None:
    """Signed in as ``username`` (a spokesperson on the board's sign-in page)."""
    if username == "spokesperson":
        page = client.get("/desk/board/login")
        client.post("/desk/board/login", data={"csrf_token": CSRF.search(page.text).group(1), "username": username,
                                               "password": PASSWORD})
        return
    page = client.get("/desk/login")
    answer = client.post("/desk/login", data={"csrf_token": CSRF.search(page.text).group(1), "username": username,
                                              "password": PASSWORD, "extension": "", "next": "/desk/"})
    assert answer.status_code == 303, answer.text


@contextmanager
def served_reports(sqlite_db, build_data: Callable, monkeypatch, tmp_path, clock=None) -> Iterator:
    """The app on ``build_data``'s rows, served for the browser (``server.db`` its database);
    ``clock``: the site's clock the reports' "this month" is read from."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with sqlite_db.session() as session:
        build_data(session)
    config = validate({"web": {"secure_cookies": False}}, environ=SECRETS, base_dir=tmp_path)
    app = create_app(config, sqlite_db, Health())
    if clock is not None:
        app.state.site_clock = clock
    with served(app) as server:
        server.db = sqlite_db
        yield server
