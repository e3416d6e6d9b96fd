"""Who may open each report: every GET route of the reports (desk pages, API, the public page) is
listed here with what each role gets, and a route not listed fails the test (issue 12's roles:
supervisors and admins see everything, operators their own figures, spokespeople their own unit,
the public /transparency only).

The statuses say who gets in; what an operator or a spokesperson then sees (their own rows only)
is checked beside each report's figures."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.tokens import create_token
from bridge.db.models import Role, User
from tests.desk.conftest import PASSWORD, csrf_of, sign_in
from tests.desk.test_locale import get_routes, sample_data  # noqa: F401 (a fixture)

REPORT_PREFIXES = ("/desk/reports", "/api/v1/reports", "/transparency")
SIGNED_OUT, OPERATOR, SUPERVISOR, ADMIN, SPOKESPERSON = None, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.SPOKESPERSON
ROLES = [SIGNED_OUT, OPERATOR, SUPERVISOR, ADMIN, SPOKESPERSON]

# What a desk page answers: a signed-out visitor is sent to the sign-in page.
PAGE_FOR_SUPERVISORS_AND_OPERATORS = {SIGNED_OUT: 303, OPERATOR: 200, SUPERVISOR: 200, ADMIN: 200, SPOKESPERSON: 403}
PAGE_FOR_SUPERVISORS = {SIGNED_OUT: 303, OPERATOR: 403, SUPERVISOR: 200, ADMIN: 200, SPOKESPERSON: 403}
API_FOR_SUPERVISORS = {SIGNED_OUT: 401, OPERATOR: 403, SUPERVISOR: 200, ADMIN: 200, SPOKESPERSON: 403}
PUBLIC = {role: 200 for role in ROLES}

# path template -> (the URL to try, the status per role)
ACCESS: dict[str, tuple[str, dict]] = {
    "/desk/reports": ("/desk/reports", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/callbacks": ("/desk/reports/callbacks", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/callbacks/rows": ("/desk/reports/callbacks/rows", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/callbacks/print": ("/desk/reports/callbacks/print", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/callbacks/export": ("/desk/reports/callbacks/export?format=csv", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/callbacks/cases/{number}/timeline": ("/desk/reports/callbacks/cases/{number}/timeline",
                                                        PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/calls": ("/desk/reports/calls", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/desk/reports/calls/export": ("/desk/reports/calls/export", PAGE_FOR_SUPERVISORS_AND_OPERATORS),
    "/api/v1/reports/calls": ("/api/v1/reports/calls", {**API_FOR_SUPERVISORS, OPERATOR: 200}),
    "/api/v1/reports/callbacks": ("/api/v1/reports/callbacks", API_FOR_SUPERVISORS),
    # a spokesperson (of CITY-LJQ here) sees their own unit: sent on to its page, the API limited to it
    "/desk/reports/units": ("/desk/reports/units", {**PAGE_FOR_SUPERVISORS, SPOKESPERSON: 303}),
    "/desk/reports/units/{code}": ("/desk/reports/units/CITY-LJQ", {**PAGE_FOR_SUPERVISORS, SPOKESPERSON: 200}),
    "/api/v1/reports/units": ("/api/v1/reports/units", {**API_FOR_SUPERVISORS, SPOKESPERSON: 200}),
    "/api/v1/reports/units/{code}/trend": ("/api/v1/reports/units/CITY-LJQ/trend",
                                           {**API_FOR_SUPERVISORS, SPOKESPERSON: 200}),
    "/transparency": ("/transparency", PUBLIC),
    "/transparency.json": ("/transparency.json", PUBLIC),
}


def report_routes(app) -> list[str]:
    return [path for path in dict.fromkeys(get_routes(app.router.routes)) if path.startswith(REPORT_PREFIXES)]


def test_every_report_route_has_its_roles_listed(desk_app):
    unlisted = [path for path in report_routes(desk_app) if path not in ACCESS]
    assert not unlisted, f"say who may open these reports (ACCESS): {unlisted}"


def _signed_in(client: TestClient, role: Role | None) -> None:
    if role is Role.SPOKESPERSON:  # spokespeople sign in on the board's own page
        page = client.get("/desk/board/login")
        answer = client.post("/desk/board/login", data={"csrf_token": csrf_of(page.text), "username": role.value,
                                                        "password": PASSWORD})
        assert answer.status_code == 303
    elif role is not None:
        assert sign_in(client, role.value).status_code == 303


def _bearer(db, role: Role | None) -> dict[str, str]:
    if role is None:
        return {}
    with db.session() as session:
        user = session.query(User).filter_by(username=role.value).one()
        return {"Authorization": f"Bearer {create_token(session, user, datetime.now(timezone.utc))}"}


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "signed-out")
def test_each_role_gets_what_the_table_says(desk_app, db, sample_data, role):  # noqa: F811 (the fixture)
    wrong = []
    with TestClient(desk_app, follow_redirects=False) as client:
        _signed_in(client, role)
        headers = _bearer(db, role)
        for path in report_routes(desk_app):
            url, statuses = ACCESS[path]
            url = url.format(**sample_data)
            answer = client.get(url, headers=headers if url.startswith("/api/") else {})
            if answer.status_code != statuses[role]:
                wrong.append(f"{url}: {answer.status_code} {answer.headers.get('location', '')}, expected {statuses[role]}")
    assert not wrong, "\n".join(wrong)
