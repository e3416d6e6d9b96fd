"""Helpers shared by the builtin board, outbox and forum-service tests (their fixtures are in
tests/forum/conftest.py): the case form, filing and reading a case through the cases API,
an API token's header, and ``run`` for a coroutine."""
from __future__ import annotations

import asyncio

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
PUBLIC_URL = "https://hotline.example.org"
UNITS = {"ljq": "CITY-LJQ", "jcy": "CITY-JCY", "zrghj": "CITY-ZRGHJ", "zjj": "CITY-ZJJ"}
PASSWORD = "correct horse battery"  # every user's of the ``people`` fixture


def case_form(**changes) -> dict:
    form = {
        "caller_surname": "朱", "caller_honorific": "女士", "caller_full_name": "朱小红",
        "caller_phone": "139 1234 5678", "caller_phone_alt": "0570-7654321", "department": "CITY-JCY",
        "location": "柯城区府山街道", "title": "房屋产权登记问题",
        "description": "家里的房子办产权登记一直办不下来，跑了好几次，希望有关部门给个说法。",
        "channel": "phone", "callback_wanted": True, "best_time": "afternoon",
    }
    form.update(changes)
    return form


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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
