"""Queue presence over HTTP: the desk's pause buttons, the supervisors' page, the JSON API, and
the sign-in refused at an extension someone else holds (SQLite and PostgreSQL)."""
from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from bridge.accounts.tokens import create_token
from bridge.db.models import DeskSession, User
from tests.desk.conftest import csrf_of, sign_in


def token_of(db, username: str) -> dict:
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        return {"Authorization": f"Bearer {create_token(session, user)}"}


def test_pause_and_resume_from_the_desk(client, db):
    assert sign_in(client, "operator").status_code == 303
    panel = client.get("/desk/presence")
    assert "8001" in panel.text
    paused = client.post("/desk/presence/pause", data={"reason": "training"},
                         headers={"hx-request": "true", "x-csrf-token": csrf_of(panel.text)})
    assert 'data-paused="training"' in paused.text
    refused = client.post("/desk/presence/pause", data={"reason": "nap"},
                          headers={"hx-request": "true", "x-csrf-token": csrf_of(panel.text)})
    assert 'role="alert"' in refused.text and 'data-paused="training"' in refused.text
    resumed = client.post("/desk/presence/resume", headers={"hx-request": "true", "x-csrf-token": csrf_of(panel.text)})
    assert "data-paused" not in resumed.text
    assert client.post("/desk/presence/resume").status_code == 403   # no CSRF token
    assert client.get("/desk/queue").status_code == 403               # operators do not see the board


def test_an_extension_held_by_someone_else_is_refused_by_name(desk_app, db):
    with TestClient(desk_app, follow_redirects=False) as first, TestClient(desk_app, follow_redirects=False) as second:
        assert sign_in(first, "operator", extension="8003").status_code == 303
        refused = sign_in(second, "supervisor", extension="8003")
        assert refused.status_code == 409 and "operator person" in refused.text


def test_a_supervisor_signs_an_operator_out_at_once(desk_app, db):
    with TestClient(desk_app, follow_redirects=False) as operator, \
            TestClient(desk_app, follow_redirects=False) as supervisor:
        sign_in(operator, "operator")
        sign_in(supervisor, "supervisor")
        board = supervisor.get("/desk/queue")
        assert board.status_code == 200 and 'data-user="operator"' in board.text
        with db.session(readonly=True) as session:
            row_id = session.scalar(select(DeskSession.id).join(User, User.id == DeskSession.user_id)
                                    .where(User.username == "operator", DeskSession.ended_at.is_(None)))
        ended = supervisor.post(f"/desk/queue/sessions/{row_id}/end",
                                headers={"hx-request": "true", "x-csrf-token": csrf_of(board.text)})
        assert 'data-user="operator"' not in ended.text
        assert operator.get("/desk/").headers["location"].startswith("/desk/login")


def test_the_api_pauses_the_tokens_desk_sign_in_and_lists_the_queue(client, db):
    headers = token_of(db, "operator")
    assert client.post("/api/v1/presence/pause", json={"reason": "break"}, headers=headers).status_code == 409
    sign_in(client, "operator")
    paused = client.post("/api/v1/presence/pause", json={"reason": "break"}, headers=headers)
    assert paused.status_code == 200 and paused.json()["paused_reason"] == "break"
    assert client.post("/api/v1/presence/pause", json={"reason": "nap"}, headers=headers).status_code == 422
    assert client.get("/api/v1/queue", headers=headers).status_code == 403
    board = client.get("/api/v1/queue", headers=token_of(db, "supervisor")).json()
    [mine] = [o for o in board["operators"] if o["username"] == "operator"]
    assert (mine["extension"], mine["paused_reason"], mine["present"]) == ("8001", "break", True)
    assert client.post("/api/v1/presence/resume", headers=headers).json()["paused_reason"] is None
    assert "/api/v1/queue" in client.get("/api/v1/openapi.json").json()["paths"]
