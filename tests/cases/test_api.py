"""The cases and departments JSON API, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bridge.db.models import Case, CaseEvent, CaseState, Department, ForumOutbox
from tests.cases.conftest import LINKEDID, auth, valid_form


def count(db, model) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


def post(client, headers, form):
    return client.post("/api/v1/cases", json=form, headers=headers)


def site_day(days: int) -> str:
    """The date ``days`` from today in the site's zone (Asia/Shanghai), as the API writes it."""
    return (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=days)).isoformat()


# --------------------------------------------------------------------- filing


def test_file_a_case_and_read_it_back(client, operator, db):
    response = post(client, operator, valid_form())
    assert response.status_code == 201, response.text
    case = response.json()
    year = datetime.now(timezone(timedelta(hours=8))).year
    assert case["number"] == f"96811-{year}-000001"
    assert case["state"] == "queued"
    assert case["department"] == "CITY-LJQ"
    assert case["department_name"] == "衢州绿色产业集聚区管委会"
    assert case["forum_url"] is None and case["deadline_at"] is None and case["overdue"] is False
    assert case["call_linkedid"] == LINKEDID
    assert case["caller_phone"] == "+8613912345678"
    assert case["caller_public_name"] == "朱女士"
    assert case["created_by"] == "operator"
    for key in ("caller_surname", "caller_honorific", "caller_full_name", "location", "title", "description",
                "callback_wanted", "sms_consent", "best_time", "operator_notes"):
        assert case[key] == valid_form()[key]
    assert case["created_at"].endswith("+08:00")
    [entry] = case["timeline"]
    assert entry["kind"] == "filed" and entry["actor"] == "operator"
    assert entry["detail"] == {"department": "CITY-LJQ", "channel": "phone", "call_linkedid": LINKEDID}

    again = client.get(f"/api/v1/cases/{case['number']}", headers=operator)
    assert again.status_code == 200
    assert again.json() == case
    assert (count(db, Case), count(db, CaseEvent), count(db, ForumOutbox)) == (1, 1, 1)


def test_the_automated_voice_callback_is_chosen_or_not_and_reads_back(client, operator, db):
    assert post(client, operator, valid_form()).json()["voice_callback"] is False  # the default
    case = post(client, operator, valid_form(call_linkedid=None, voice_callback=True)).json()
    assert case["voice_callback"] is True
    assert client.get(f"/api/v1/cases/{case['number']}", headers=operator).json()["voice_callback"] is True
    with db.session(readonly=True) as session:
        assert [c.voice_callback for c in session.scalars(select(Case).order_by(Case.id))] == [False, True]


def test_the_best_time_and_the_first_day_read_back(client, operator, db):
    case = post(client, operator, valid_form(best_time="evening", callback_not_before=site_day(3))).json()
    assert (case["best_time"], case["best_time_text"], case["callback_not_before"]) == ("evening", "", site_day(3))
    with db.session(readonly=True) as session:
        stored = session.scalar(select(Case))
        assert (stored.best_time_choice.value, stored.callback_not_before.isoformat(), stored.best_time) == (
            "evening", site_day(3), "")
    default = post(client, operator, valid_form(best_time=None, call_linkedid=None)).json()
    assert (default["best_time"], default["callback_not_before"]) == ("any", None)


def test_an_old_case_reads_back_its_free_text_beside_the_choice_any(client, operator, db):
    """A case filed before the choice existed: no code stored, what was typed kept."""
    number = post(client, operator, valid_form()).json()["number"]
    with db.session() as session:
        old = session.scalar(select(Case).where(Case.number == number))
        old.best_time_choice, old.best_time = None, "周三下午三点"
    case = client.get(f"/api/v1/cases/{number}", headers=operator).json()
    assert (case["best_time"], case["best_time_text"], case["callback_not_before"]) == ("any", "周三下午三点", None)
    [listed] = client.get("/api/v1/cases", headers=operator).json()["cases"]
    assert (listed["best_time"], listed["best_time_text"]) == ("any", "周三下午三点")


def test_free_text_best_time_is_answered_with_the_allowed_values(client, operator):
    response = post(client, {**operator, "Accept-Language": "en"}, valid_form(best_time="工作日下午"))
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "field": "best_time", "code": "best_time_invalid",
        "message": "The best time to call back must be one of: morning, afternoon, evening, any."}]


def test_unknown_case_is_404(client, operator):
    assert client.get("/api/v1/cases/96811-2026-999999", headers=operator).status_code == 404


def test_case_without_a_call(client, operator):
    for channel in ("walk_in", "message", "email", "phone"):
        response = post(client, operator, valid_form(call_linkedid=None, channel=channel))
        assert response.status_code == 201, response.text
        assert response.json()["channel"] == channel
        assert response.json()["call_linkedid"] is None


def test_outbox_payload_is_the_public_part_only(client, operator, db):
    form = valid_form(caller_phone_alt="0570-7654321", caller_full_name="朱小红", best_time="evening",
                      callback_not_before=site_day(2), operator_notes="家住东港三路12号", sms_consent=True)
    number = post(client, operator, form).json()["number"]
    with db.session(readonly=True) as session:
        [row] = session.scalars(select(ForumOutbox)).all()
        assert row.operation == "create_post" and row.idempotency_key == number and row.state.value == "pending"
        payload = row.payload
    assert payload["caller"] == "朱女士"
    assert payload["case_number"] == number
    assert payload["department"] == "CITY-LJQ"
    assert payload["title"] == form["title"] and payload["location"] == form["location"]
    assert payload["description"] == form["description"]
    assert "96811 热线" in payload["body"] and number in payload["body"] and "朱女士" in payload["body"]
    everything = repr(payload)
    for private in ("朱小红", "13912345678", "139 1234 5678", "+8613912345678", "1234 5678",
                    "7654321", "0570", "evening", site_day(2), "家住东港三路12号", "sms", "callback", "phone"):
        assert private not in everything, private


# ----------------------------------------------------------------- validation


RULES = [
    # (changes to the valid form, field, code)
    ({"caller_surname": None}, "caller_surname", "required"),
    ({"caller_surname": "  "}, "caller_surname", "required"),
    ({"caller_surname": "朱小红"}, "caller_surname", "surname_invalid"),
    ({"caller_surname": "Smith3"}, "caller_surname", "surname_invalid"),
    ({"caller_honorific": None}, "caller_honorific", "required"),
    ({"caller_honorific": "小姐"}, "caller_honorific", "honorific_invalid"),
    ({"caller_full_name": "王小红"}, "caller_full_name", "full_name_without_surname"),
    ({"caller_full_name": "朱" * 65}, "caller_full_name", "too_long"),
    ({"caller_phone": None}, "caller_phone", "required"),
    ({"caller_phone": "1234567"}, "caller_phone", "phone_invalid"),
    ({"caller_phone": "12345678901"}, "caller_phone", "phone_invalid"),
    ({"caller_phone": "139-abcd-5678"}, "caller_phone", "phone_invalid"),
    ({"caller_phone": "+1 650 253 0000"}, "caller_phone", "phone_not_chinese"),
    ({"caller_phone_alt": "0570-12345"}, "caller_phone_alt", "phone_invalid"),
    ({"caller_phone_alt": "13912345678"}, "caller_phone_alt", "phone_same_as_main"),
    ({"department": None}, "department", "required"),
    ({"department": "CITY-NOPE"}, "department", "department_unknown"),
    ({"location": "路" * 101}, "location", "too_long"),
    ({"title": None}, "title", "required"),
    ({"title": "标" * 61}, "title", "too_long"),
    ({"description": None}, "description", "required"),
    ({"description": "垃圾太多了"}, "description", "too_short"),
    ({"description": "多" * 2001}, "description", "too_long"),
    ({"best_time": "周三下午三点"}, "best_time", "best_time_invalid"),
    ({"best_time": "Evening"}, "best_time", "best_time_invalid"),
    ({"callback_not_before": site_day(-1)}, "callback_not_before", "date_in_past"),
    ({"callback_not_before": site_day(90)}, "callback_not_before", "date_too_far"),
    ({"callback_not_before": "next Monday"}, "callback_not_before", "date_invalid"),
    ({"channel": "fax"}, "channel", "channel_invalid"),
    ({"channel": "walk_in"}, "call_linkedid", "call_needs_phone_channel"),
    ({"call_linkedid": "9999.1"}, "call_linkedid", "call_unknown"),
    ({"sms_consent": True, "caller_phone": "0570-1234567"}, "sms_consent", "sms_needs_mobile"),
    ({"voice_callback": True, "callback_wanted": False}, "voice_callback", "voice_needs_callback"),
    ({"title": "请回电13912345678"}, "title", "privacy_found"),
    ({"location": "朱小红家门口"}, "location", "privacy_found"),
    ({"description": "身份证号码330802198001011234，请核实。"}, "description", "privacy_found"),
    ({"description": "家里电话０５７０－１２３４５６７，请尽快处理。"}, "description", "privacy_found"),
    # FastAPI's own validation, in the same shape:
    ({"title": 12}, "title", "not_text"),
    ({"callback_wanted": "perhaps"}, "callback_wanted", "not_bool"),
    ({"caller_phone": 13912345678}, "caller_phone", "not_text"),
    ({"callback_not_before": 20261205}, "callback_not_before", "not_text"),
    ({"colour": "blue"}, "colour", "unknown_field"),
]


@pytest.mark.parametrize("changes, field, code", RULES, ids=[f"{f}-{c}" for _, f, c in RULES])
def test_each_rule(client, operator, db, changes, field, code):
    response = post(client, operator, valid_form(**changes))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [(e["field"], e["code"]) for e in detail] == [(field, code)]
    message = detail[0]["message"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in message), message
    assert (count(db, Case), count(db, CaseEvent), count(db, ForumOutbox)) == (0, 0, 0)


def test_retired_unit_is_refused(client, operator, db):
    with db.session() as session:
        session.scalar(select(Department).where(Department.code == "CITY-LJQ")).retired_at = \
            datetime(2026, 1, 1, tzinfo=timezone.utc)
    detail = post(client, operator, valid_form()).json()["detail"]
    assert detail == [{"field": "department", "code": "department_retired",
                       "message": "单位“衢州绿色产业集聚区管委会”（CITY-LJQ）已撤销，请选择现在负责的单位。"}]


def test_privacy_message_says_what_to_remove(client, operator):
    detail = post(client, operator, valid_form(description="朱小红反映，手机139 1234 5678，路口垃圾三天没人清理。")
                  ).json()["detail"]
    assert [d["message"] for d in detail] == [
        "问题描述中含有来电人的姓名“朱小红”，请删除：这部分内容会公开发到论坛上。",
        "问题描述中含有电话号码“139 1234 5678”，请删除：这部分内容会公开发到论坛上。",
    ]


def test_messages_in_english_on_request(client, operator):
    response = post(client, {**operator, "Accept-Language": "en-GB,en;q=0.9"}, valid_form(title=None))
    assert response.json()["detail"] == [{"field": "title", "code": "required", "message": "Please fill in the title."}]


def test_all_problems_reported_at_once(client, operator):
    response = post(client, operator, {"caller_phone": "12", "department": "CITY-NOPE"})
    assert [e["field"] for e in response.json()["detail"]] == [
        "caller_surname", "caller_honorific", "caller_phone", "department", "title", "description"]


def test_malformed_json_and_wrong_body(client, operator):
    response = client.post("/api/v1/cases", content=b"{not json", headers={**operator, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": "body", "code": "invalid_json", "message": "请求内容不是有效的 JSON。"}]
    response = client.post("/api/v1/cases", json=["a"], headers=operator)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "body"


# ------------------------------------------------------------------------ auth


def test_token_auth(client, staff):
    assert post(client, {}, valid_form()).status_code == 401
    assert post(client, {}, {"title": 1}).status_code == 401  # auth before validation
    assert post(client, auth("hb_not-a-token"), valid_form()).status_code == 401
    assert client.get("/api/v1/cases", headers={}).status_code == 401
    assert client.get("/api/v1/departments").status_code == 401
    spokesperson = auth(staff["spokesperson"])
    assert post(client, spokesperson, valid_form()).status_code == 403
    assert client.get("/api/v1/cases", headers=spokesperson).status_code == 403
    assert client.get("/api/v1/cases/96811-2026-000001", headers=spokesperson).status_code == 403
    for role in ("operator", "supervisor", "admin"):
        assert post(client, auth(staff[role]), valid_form()).status_code == 201, role


# ------------------------------------------------------------------ listing


def _set(db, number, **values):
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        for key, value in values.items():
            setattr(case, key, value)


def test_list_filters_and_search(client, staff, db):
    operator, supervisor = auth(staff["operator"]), auth(staff["supervisor"])
    a = post(client, operator, valid_form()).json()["number"]
    b = post(client, supervisor, valid_form(call_linkedid=None, caller_phone="0570-1234567",
                                           caller_surname="王", caller_full_name="王大明", caller_honorific="先生",
                                           department="CITY-ZHZFJ", title="公鸡凌晨打鸣")).json()["number"]
    c = post(client, operator, valid_form(caller_phone="13800001111", caller_phone_alt="0570-7654321",
                                         department="CITY-JYJ", title="外省教师资格证是否有效")).json()["number"]
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    _set(db, b, state=CaseState.POSTED, deadline_at=past)
    _set(db, c, state=CaseState.ANSWERED, deadline_at=past)

    def numbers(query: str, headers=operator) -> list[str]:
        response = client.get(f"/api/v1/cases{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [x["number"] for x in response.json()["cases"]]

    assert numbers("") == [c, b, a]
    assert numbers("?mine=true") == [c, a]
    assert numbers("?mine=true", supervisor) == [b]
    assert numbers("?state=queued") == [a]
    assert numbers("?state=posted") == [b]
    assert numbers("?department=CITY-JYJ") == [c]
    assert numbers("?department=city-zhzfj") == [b]
    assert numbers("?overdue=true") == [b]  # c is answered: nothing owed
    assert numbers("?today=true") == [c, b, a]
    assert numbers(f"?q={b}") == [b]
    assert numbers(f"?q={b[-6:]}") == [b]
    assert numbers("?q=139 1234 5678") == [a]
    assert numbers("?q=%2B8613912345678") == [a]
    assert numbers("?q=0570-1234567") == [b]
    assert numbers("?q=05707654321") == [c]
    assert numbers("?q=1111") == [c]
    assert numbers("?q=nothing") == []
    assert numbers("?state=queued&department=CITY-LJQ&mine=true") == [a]
    page = client.get("/api/v1/cases?per_page=2&page=2", headers=operator).json()
    assert (page["total"], page["page"], page["per_page"], [x["number"] for x in page["cases"]]) == (3, 2, 2, [a])
    summary = client.get("/api/v1/cases", headers=operator).json()["cases"][1]
    assert summary["overdue"] is True and "timeline" not in summary


def test_list_query_errors_in_the_same_shape(client, operator):
    response = client.get("/api/v1/cases?state=lost", headers=operator)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "state" and "queued" in error["message"]
    response = client.get("/api/v1/cases?page=0&per_page=x", headers=operator)
    assert [(e["field"], e["code"]) for e in response.json()["detail"]] == [("page", "too_small"),
                                                                             ("per_page", "not_integer")]


# --------------------------------------------------------------- departments


def test_departments(client, staff, db):
    with db.session() as session:
        session.scalar(select(Department).where(Department.code == "CITY-KJJ")).retired_at = \
            datetime(2026, 1, 1, tzinfo=timezone.utc)
    response = client.get("/api/v1/departments", headers=auth(staff["spokesperson"]))
    assert response.status_code == 200
    units = response.json()
    assert len(units) == 108
    ljq = next(u for u in units if u["code"] == "CITY-LJQ")
    assert ljq == {"code": "CITY-LJQ", "name": "衢州绿色产业集聚区管委会", "kind": "city_department",
                   "pinyin_initials": ljq["pinyin_initials"], "synonyms": ["高新区"], "retired": False}
    assert ljq["pinyin_initials"]
    assert next(u for u in units if u["code"] == "CITY-ZHZFJ")["synonyms"][:3] == ["城管", "城管局", "综合执法"]
    retired = client.get("/api/v1/departments?retired=true", headers=auth(staff["operator"])).json()
    assert [u["code"] for u in retired] == ["CITY-KJJ"]
    active = client.get("/api/v1/departments?retired=false", headers=auth(staff["operator"])).json()
    assert len(active) == 107 and "CITY-KJJ" not in {u["code"] for u in active}


def test_openapi_document_lists_the_routes(client):
    document = client.get("/api/v1/openapi.json").json()
    assert {"/api/v1/cases", "/api/v1/cases/{number}", "/api/v1/departments"} <= set(document["paths"])
    assert "CaseIn" in document["components"]["schemas"]
