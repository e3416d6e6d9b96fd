"""Fixtures for the cases tests: the shipped units, one user and API token per role, a test
client on the daemon's app, and a valid case form."""
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

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
LINKEDID = "1764133200.42"
CALLER_NUMBER = "13912345678"


def valid_form(**changes) -> dict:
    """The article's worked example as a case form (valid), with ``changes`` applied (None removes)."""
    form = {
        "call_linkedid": LINKEDID,
        "caller_surname": "朱",
        "caller_honorific": "女士",
        "caller_full_name": "朱小红",
        "caller_phone": "139 1234 5678",
        "department": "CITY-LJQ",
        "location": "东港三路与百灵路交叉口",
        "title": "路口垃圾堆积无人清理",
        "description": "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。",
        "callback_wanted": True,
        "sms_consent": False,
        "best_time": "afternoon",
        "operator_notes": "来电人语气着急",
    }
    for key, value in changes.items():
        if value is None:
            form.pop(key, None)
        else:
            form[key] = value
    return form


@pytest.fixture
def site_config():
    return validate({}, environ=SECRETS)


@pytest.fixture
def zone(site_config):
    return site_config.site.zone


@pytest.fixture
def staff(db) -> dict[str, str]:
    """Units, a user per role (named after the role) and their tokens: {role value: token}."""
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    tokens = {}
    with db.session() as session:
        ensure_shipped_units(session, now)
        for role in Role:
            user = add_user(session, role.value, role, "correct horse battery",
                            department_code="CITY-LJQ" if role is Role.SPOKESPERSON else None, now=now)
            tokens[role.value] = create_token(session, user, now)
        session.add(Call(linkedid=LINKEDID, caller_number=CALLER_NUMBER, arrived_at=now,
                         disposition=CallDisposition.ANSWERED))
    return tokens


@pytest.fixture
def client(db, site_config, staff):
    app = create_app(site_config, db, Health())
    with TestClient(app) as test_client:
        yield test_client


def auth(token: str, **headers) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


@pytest.fixture
def operator(staff) -> dict[str, str]:
    """Headers of the operator's requests."""
    return auth(staff["operator"])
