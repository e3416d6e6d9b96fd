"""The reports tests' app on the hand-built cases of tests/reports/data.py (a module may give its own
``users`` fixture to build other cases), an API token per role and a test client; and the browser
tests' tab: a supervisor signed in to the module's ``live`` server."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import User
from bridge.health import Health
from bridge.web.app import create_app
from tests.browser import new_tab
from tests.reports.data import NOW, PASSWORD, build
from tests.reports.web import SECRETS



@pytest.fixture
def users(db) -> dict[str, int]:
    with db.session() as session:
        return build(session)


@pytest.fixture
def app(db, users, monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    config = validate({"web": {"secure_cookies": False}, "pbx": {"recordings_dir": str(recordings)}},
                      environ=SECRETS, base_dir=tmp_path)
    return create_app(config, db, Health())


@pytest.fixture
def tokens(db, users) -> dict[str, str]:
    with db.session() as session:
        return {name: create_token(session, session.get(User, uid), NOW) for name, uid in users.items()}


@pytest.fixture
def client(app):
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def page(browser, live):
    tab = new_tab(browser, timeout_ms=15_000)  # a loaded machine: live waits get 15 s
    tab.goto(f"{live.url}/desk/login")
    tab.fill('input[name="username"]', "supervisor")
    tab.fill('input[name="password"]', PASSWORD)
    tab.click('#login-form button[type="submit"]')
    tab.wait_for_url(f"{live.url}/desk/")
    yield tab
    tab.context.close()

