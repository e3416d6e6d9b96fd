"""Fixtures for the desk: the app from create_app with the desk mounted, a user per role,
a fake clock for the sign-in throttle, and helpers to sign in through the login form."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.config import validate
from bridge.db.models import Call, CallDisposition, Role
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.web.app import create_app
from bridge.web.throttle import SignInThrottle
from tests.desk.server import served

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "desk-test-session-secret", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
PASSWORD = "correct horse battery"
LINKEDID = "1764133200.42"
CALLER_NUMBER = "13912345678"
EXTENSIONS = {"operator": "8001", "supervisor": "8002"}


def valid_form(**changes) -> dict:
    """A valid case form as the page posts it (None removes a field)."""
    form = {
        "call_linkedid": LINKEDID, "caller_surname": "朱", "caller_honorific": "女士",
        "caller_full_name": "朱小红", "caller_phone": "139 1234 5678", "caller_phone_alt": "",
        "department": "CITY-LJQ", "location": "东港三路与百灵路交叉口", "title": "路口垃圾堆积无人清理",
        "description": "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。",
        "callback_wanted": "true", "best_time": "afternoon", "operator_notes": "来电人语气着急",
    }
    for key, value in changes.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return form


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def desk_config(monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    return validate({"pbx": {"recordings_dir": str(recordings)}, "web": {"secure_cookies": False}},
                    environ=SECRETS, base_dir=tmp_path)


@pytest.fixture
def people(db) -> None:
    """The shipped units, a user per role (named after it) and one answered call."""
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    with db.session() as session:
        ensure_shipped_units(session, now)
        for role in Role:
            add_user(session, role.value, role, PASSWORD, extension=EXTENSIONS.get(role.value),
                     department_code="CITY-LJQ" if role is Role.SPOKESPERSON else None,
                     display_name=f"{role.value} person", now=now)
        session.add(Call(linkedid=LINKEDID, caller_number=CALLER_NUMBER, arrived_at=now,
                         disposition=CallDisposition.ANSWERED, extension="8001"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def desk_app(db, desk_config, people, clock):
    app = create_app(desk_config, db, Health())
    app.state.desk_throttle = SignInThrottle(clock=clock)  # the tests' clock decides lock-outs
    return app


@pytest.fixture
def client(desk_app):
    with TestClient(desk_app, follow_redirects=False) as test_client:
        yield test_client


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, extension: str = "", **headers):
    page = client.get("/desk/login", headers=headers)
    return client.post("/desk/login", data={"csrf_token": csrf_of(page.text), "username": username,
                                            "password": password, "extension": extension, "next": "/desk/"},
                       headers=headers)


@pytest.fixture
def operator(client) -> TestClient:
    """The client, signed in as the operator at extension 8001."""
    response = sign_in(client, "operator")
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def live(desk_app):
    """``desk_app`` served on http://127.0.0.1:PORT (``live.url``); ``live.publish(event)`` from the test."""
    with served(desk_app) as server:
        yield server
