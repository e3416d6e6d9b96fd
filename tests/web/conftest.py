"""Fixtures of the shared web layer's tests: the daemon's app (create_app, every capability mounted),
the shipped units, a user and an API token per role, and a test client."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import Call, CallDisposition, Role
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.web.app import create_app

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "web-test-session-secret", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
PASSWORD = "correct horse battery"
LINKEDID = "1764133200.42"


@pytest.fixture
def web_config(monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return validate({"web": {"secure_cookies": False}}, environ=SECRETS, base_dir=tmp_path)


@pytest.fixture
def tokens(db) -> dict[str, str]:
    """The shipped units, a user per role (named after it, the spokesperson of CITY-LJQ), one answered
    call; {role value: API token}."""
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    found = {}
    with db.session() as session:
        ensure_shipped_units(session, now)
        for role in Role:
            user = add_user(session, role.value, role, PASSWORD, extension="8001" if role is Role.OPERATOR else None,
                            department_code="CITY-LJQ" if role is Role.SPOKESPERSON else None, now=now)
            found[role.value] = create_token(session, user, now)
        session.add(Call(linkedid=LINKEDID, caller_number="13912345678", arrived_at=now,
                         disposition=CallDisposition.ANSWERED, extension="8001"))
    return found


@pytest.fixture
def web_app(db, web_config, tokens):
    return create_app(web_config, db, Health())


@pytest.fixture
def client(web_app):
    with TestClient(web_app, follow_redirects=False) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
