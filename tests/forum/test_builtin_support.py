"""Fixtures shared by the builtin board, outbox and forum-service tests (imported by them).

The units, an operator and one spokesperson per unit of the article's chain
(procuratorate -> natural resources -> housing & construction) plus the Green
Industry Cluster, their API tokens, a test client on the app with the board's
router, and a helper that runs the outbox once.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import Role
from bridge.departments.service import ensure_shipped_units
from bridge.forum.builtin.api import router as board_router
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.outbox import OutboxWorker
from bridge.forum.service import Deadlines
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.web.app import create_app

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
PUBLIC_URL = "https://hotline.example.org"
UNITS = {"ljq": "CITY-LJQ", "jcy": "CITY-JCY", "zrghj": "CITY-ZRGHJ", "zjj": "CITY-ZJJ"}

pytestmark = []


def case_form(**changes) -> dict:
    form = {
        "caller_surname": "朱", "caller_honorific": "女士", "caller_full_name": "朱小红",
        "caller_phone": "139 1234 5678", "caller_phone_alt": "0570-7654321", "department": "CITY-JCY",
        "location": "柯城区府山街道", "title": "房屋产权登记问题",
        "description": "家里的房子办产权登记一直办不下来，跑了好几次，希望有关部门给个说法。",
        "channel": "phone", "callback_wanted": True, "best_time": "工作日下午",
    }
    form.update(changes)
    return form


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def site_config():
    return validate({"web": {"public_url": PUBLIC_URL, "secure_cookies": False}}, environ=SECRETS)


@pytest.fixture
def people(db) -> dict[str, str]:
    """{"operator": token, "supervisor": token, "ljq": token, "jcy": ..., "zrghj": ..., "zjj": ...}"""
    now = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
    tokens = {}
    with db.session() as session:
        ensure_shipped_units(session, now)
        for role in (Role.OPERATOR, Role.SUPERVISOR):
            tokens[role.value] = create_token(session, add_user(session, role.value, role, "correct horse battery",
                                                                now=now), now)
        for short, code in UNITS.items():
            user = add_user(session, f"fyr-{short}", Role.SPOKESPERSON, "correct horse battery",
                            department_code=code, display_name=f"{code}发言人", now=now)
            tokens[short] = create_token(session, user, now)
    return tokens


@pytest.fixture
def live():
    return LiveEvents()


@pytest.fixture
def app(db, site_config, people, live):
    application = create_app(site_config, db, Health(), live=live)
    if not any(getattr(r, "path", "").startswith("/api/v1/board") for r in application.routes):
        application.include_router(board_router)
    return application


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def deadlines(site_config):
    return Deadlines.from_config(site_config)


@pytest.fixture
def forum(db):
    return BuiltinForum(db, PUBLIC_URL)


@pytest.fixture
def worker(db, forum, deadlines, live, site_config):
    return OutboxWorker(db, forum, backoff_s=site_config.forum.retry_backoff_s, deadlines=deadlines, live=live)


def run(coro):
    return asyncio.run(coro)


def file_case(client, people, **changes) -> dict:
    response = client.post("/api/v1/cases", json=case_form(**changes), headers=auth(people["operator"]))
    assert response.status_code == 201, response.text
    return response.json()


def read_case(client, people, number: str) -> dict:
    response = client.get(f"/api/v1/cases/{number}", headers=auth(people["operator"]))
    assert response.status_code == 200, response.text
    return response.json()
