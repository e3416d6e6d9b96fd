"""GET /api/v1/calls: filters, pagination, times in the site zone, token auth (SQLite and PostgreSQL)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user, disable_user
from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import Role
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.pbx.calllog import save_record
from bridge.pbx.events import CallRecord
from bridge.web.app import create_app

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai


@pytest.fixture
def api(db):
    config = validate({}, environ={"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"})
    with db.session() as session:
        operator = add_user(session, "wangfang", Role.OPERATOR, "a long enough password", extension="8001")
        supervisor = add_user(session, "zhaolei", Role.SUPERVISOR, "a long enough password")
        token = create_token(session, supervisor)
        operator_token = create_token(session, operator)
        for i in range(7):
            answered = i % 2 == 0
            save_record(session, CallRecord(
                linkedid=f"1764032400.{i}", caller_number="13900000001" if i < 3 else f"1390000010{i}",
                caller_name="张三", dialled_number="96811", arrived_at=T0 + timedelta(minutes=i),
                answered_at=T0 + timedelta(minutes=i, seconds=20) if answered else None,
                queue_wait_s=20.0, extension="8001" if answered else None,
                talk_s=60.0 if answered else None, ended_at=T0 + timedelta(minutes=i, seconds=80),
                hangup_cause=16, hangup_cause_text="Normal Clearing",
                disposition="answered" if answered else "abandoned",
                recording=f"/rec/{i}.wav" if answered else None))
    client = TestClient(create_app(config, db, Health()))
    client.headers["Authorization"] = f"Bearer {token}"
    client.operator_token = operator_token
    return client


def test_lists_calls_newest_first_with_every_field(api):
    body = api.get("/api/v1/calls").json()
    assert body["total"] == 7 and body["page"] == 1
    first = body["calls"][0]
    assert first["linkedid"] == "1764032400.6"
    assert first["arrived_at"] == "2026-11-25T09:06:00+08:00"  # the site's zone
    for key in ("linkedid", "caller_number", "caller_name", "dialled_number", "arrived_at", "answered_at",
                "ended_at", "queue_wait_s", "talk_s", "operator", "extension", "hangup_cause", "disposition",
                "recording"):
        assert key in first
    assert first["operator"] == "wangfang" and first["extension"] == "8001"
    assert first["disposition"] == "answered" and first["talk_s"] == 60.0


def test_filters_and_pagination(api):
    assert api.get("/api/v1/calls", params={"caller": "13900000001"}).json()["total"] == 3
    assert api.get("/api/v1/calls", params={"disposition": "abandoned"}).json()["total"] == 3
    assert api.get("/api/v1/calls", params={"operator": "wangfang"}).json()["total"] == 4
    window = {"since": "2026-11-25T09:02:00+08:00", "until": "2026-11-25T09:04:00+08:00"}
    assert [c["linkedid"] for c in api.get("/api/v1/calls", params=window).json()["calls"]] == [
        "1764032400.3", "1764032400.2"]
    page2 = api.get("/api/v1/calls", params={"per_page": 3, "page": 2}).json()
    assert [c["linkedid"] for c in page2["calls"]] == ["1764032400.3", "1764032400.2", "1764032400.1"]
    assert page2["total"] == 7


def test_disposition_filter_tells_a_menu_hang_up_from_a_failure(api, db):
    with db.session() as session:
        for n, (disposition, cause, text) in enumerate((("hung_up_in_menu", 0, None),
                                                        ("failed", 38, "Network out of order"))):
            save_record(session, CallRecord(
                linkedid=f"1764040000.{n}", caller_number="13900000002", dialled_number="96811",
                arrived_at=T0 + timedelta(hours=1, minutes=n), ended_at=T0 + timedelta(hours=1, minutes=n, seconds=3),
                hangup_cause=cause, hangup_cause_text=text, disposition=disposition))
    menu = api.get("/api/v1/calls", params={"disposition": "hung_up_in_menu"}).json()
    assert [(c["linkedid"], c["disposition"]) for c in menu["calls"]] == [("1764040000.0", "hung_up_in_menu")]
    failed = api.get("/api/v1/calls", params={"disposition": "failed"}).json()
    assert [(c["linkedid"], c["hangup_cause"], c["hangup_cause_text"]) for c in failed["calls"]] == [
        ("1764040000.1", 38, "Network out of order")]


@pytest.mark.parametrize("params", [
    {"disposition": "lost"}, {"since": "yesterday"}, {"since": "2026-11-25T09:00:00"},
    {"per_page": 0}, {"page": 0},
    {"since": "2026-11-25T10:00:00+08:00", "until": "2026-11-25T09:00:00+08:00"},
])
def test_bad_filters_are_422(api, params):
    response = api.get("/api/v1/calls", params=params)
    assert response.status_code == 422, response.text


def test_token_is_required_and_checked(api, db):
    assert api.get("/api/v1/calls", headers={"Authorization": ""}).status_code == 401
    assert api.get("/api/v1/calls", headers={"Authorization": "Bearer hb_wrong"}).status_code == 401
    assert api.get("/api/v1/calls", headers={"Authorization": f"Bearer {api.operator_token}"}).status_code == 200
    with db.session() as session:
        disable_user(session, "wangfang")
    response = api.get("/api/v1/calls", headers={"Authorization": f"Bearer {api.operator_token}"})
    assert response.status_code == 401


def test_spokespeople_never_see_callers(api, db):
    with db.session() as session:
        ensure_shipped_units(session)
        spokesperson = add_user(session, "unitstaff", Role.SPOKESPERSON, "a long enough password",
                                department_code="CITY-GAJ")
        token = create_token(session, spokesperson)
    response = api.get("/api/v1/calls", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
