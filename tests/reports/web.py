"""Signing in and API tokens in the reports' HTTP tests."""
from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.reports.data import PASSWORD

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
