"""The builtin board through its JSON API with spokesperson tokens, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from bridge.db.models import BoardEvent, BoardPost, BoardReply, CaseEvent
from tests.forum.test_builtin_support import PUBLIC_URL, auth, file_case, read_case, run


def posted_case(client, people, worker, **changes) -> tuple[dict, int]:
    case = file_case(client, people, **changes)
    assert run(worker.run_once()).sent == 1
    case = read_case(client, people, case["number"])
    return case, int(case["forum_url"].rsplit("/", 1)[1])


def action(client, token, post_id, verb, **body):
    return client.post(f"/api/v1/board/posts/{post_id}/{verb}", json=body or None, headers=auth(token))


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_the_whole_life_of_a_case(client, people, worker, forum, db):
    """Filed, posted, accepted, forwarded twice, answered, follow-up, answered again."""
    case, post_id = posted_case(client, people, worker)
    number = case["number"]
    assert case["state"] == "posted" and case["department"] == "CITY-JCY"
    assert case["forum_url"] == f"{PUBLIC_URL}/board/threads/{post_id}"
    posted_deadline = at(case["deadline_at"])

    board = client.get("/api/v1/board/posts", params={"unit": "CITY-JCY"}, headers=auth(people["jcy"])).json()
    assert board["total"] == 1
    [thread] = board["posts"]
    assert thread["case_number"] == number and thread["colour"] == "blue" and thread["status"] == "未受理"
    assert "朱女士" in thread["body"] and "96811" in thread["body"] and number in thread["body"]
    for private in ("朱小红", "13912345678", "1234 5678", "7654321"):
        assert private not in thread["body"] and private not in thread["title"]

    # The procuratorate accepts, then sees it is not its remit: forwards to natural resources.
    response = action(client, people["jcy"], post_id, "accept")
    assert response.status_code == 200, response.text
    assert response.json()["colour"] == "green" and response.json()["status"] == "已受理"
    case = read_case(client, people, number)
    assert case["state"] == "accepted" and at(case["deadline_at"]) != posted_deadline

    response = action(client, people["jcy"], post_id, "forward", to_department="CITY-ZRGHJ",
                      note="此事属于市自然资源和规划局职责，已转该局办理。")
    assert response.status_code == 200, response.text
    assert response.json()["unit"] == "CITY-ZRGHJ" and response.json()["colour"] == "blue"
    case = read_case(client, people, number)
    assert case["state"] == "forwarded" and case["department"] == "CITY-ZRGHJ" and case["deadline_at"]

    # Natural resources forwards at once (without accepting) to housing & construction.
    assert action(client, people["zrghj"], post_id, "forward", to_department="CITY-ZJJ",
                  note="产权登记中的房屋问题由市住房和城乡建设局负责，已转办。").status_code == 200
    case = read_case(client, people, number)
    assert case["state"] == "forwarded" and case["department"] == "CITY-ZJJ"
    # The unit that forwarded it may no longer act on it.
    assert action(client, people["jcy"], post_id, "answer", text="已处理").status_code == 403

    assert action(client, people["zjj"], post_id, "accept").status_code == 200
    response = action(client, people["zjj"], post_id, "answer", text="经核实，您的产权登记材料已齐全，本周内办结。")
    assert response.status_code == 200, response.text
    case = read_case(client, people, number)
    assert case["state"] == "answered" and case["deadline_at"] is None

    # The caller phones again: the hotline posts a follow-up in the thread.
    from bridge.forum.adapter import PostRef

    ref = run(forum.find_post(number))
    assert ref == PostRef(case_number=number, remote_id=str(post_id), url=case["forum_url"])
    reply_id = run(forum.post_follow_up(ref, "朱女士追问：办结后证书到哪里领取？", idempotency_key=f"{number}:f1"))
    assert run(forum.post_follow_up(ref, "朱女士追问：办结后证书到哪里领取？", idempotency_key=f"{number}:f1")) == reply_id
    from bridge.forum.link import ForumLink
    from bridge.health import Health

    health = Health()
    link = ForumLink(client.app.state.config, db, health, client.app.state.live, forum=forum)
    assert run(link.cycle())["applied"] == 1  # the follow-up; the API already applied the rest
    assert health.get("forum") == "up"
    case = read_case(client, people, number)
    assert case["state"] == "reopened" and case["deadline_at"] is not None

    response = action(client, people["zjj"], post_id, "answer", text="证书可在市民中心不动产登记窗口领取。")
    assert response.status_code == 200, response.text
    thread = response.json()
    assert thread["state"] == "answered"
    assert [r["kind"] for r in thread["replies"]] == [
        "accepted", "forwarded", "forwarded", "accepted", "answer", "follow_up", "follow_up_answer"]
    case = read_case(client, people, number)
    assert case["state"] == "answered" and case["deadline_at"] is None
    kinds = [e["kind"] for e in case["timeline"]]
    assert kinds == ["filed", "posted", "accepted", "forwarded", "forwarded", "accepted", "answered",
                     "follow_up_asked", "follow_up_answered"]
    forwards = [e["detail"] for e in case["timeline"] if e["kind"] == "forwarded"]
    assert [(f["unit"], f["to_unit"]) for f in forwards] == [("CITY-JCY", "CITY-ZRGHJ"), ("CITY-ZRGHJ", "CITY-ZJJ")]

    # Polling everything again changes nothing: each event is applied once.
    link.cursor, link._cursor_loaded = None, True
    assert run(link.poll_events()) == 0
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(CaseEvent)) == len(kinds)
        assert session.scalar(select(func.count()).select_from(BoardEvent)) == 7


def test_another_units_spokesperson_is_refused(client, people, worker):
    _case, post_id = posted_case(client, people, worker)
    for verb, body in (("accept", {}), ("answer", {"text": "已处理完毕"}),
                       ("forward", {"to_department": "CITY-ZJJ", "note": "转住建局办理"})):
        response = action(client, people["ljq"], post_id, verb, **body)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "not_your_unit"
        assert "市人民检察院" in response.json()["detail"]
    # Staff may read the board, but not act on it.
    assert client.get("/api/v1/board/posts", headers=auth(people["operator"])).status_code == 200
    assert action(client, people["operator"], post_id, "accept").status_code == 403
    assert client.post(f"/api/v1/board/posts/{post_id}/accept").status_code == 401


def test_forward_without_a_note_is_refused(client, people, worker, db):
    _case, post_id = posted_case(client, people, worker)
    for body in ({"to_department": "CITY-ZJJ"}, {"to_department": "CITY-ZJJ", "note": "   "}):
        response = action(client, people["jcy"], post_id, "forward", **body)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["field"] == "note" and error["code"] == "required"
        assert error["message"] == "请填写给发帖人的转办说明。"
    response = client.post(f"/api/v1/board/posts/{post_id}/forward", json={"to_department": "CITY-ZJJ"},
                           headers={**auth(people["jcy"]), "Accept-Language": "en"})
    assert response.json()["detail"][0]["message"] == "The note to the poster is required."
    response = action(client, people["jcy"], post_id, "forward", to_department="NOPE", note="转某单位")
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "to_department"
    response = action(client, people["jcy"], post_id, "answer")
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "text"
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BoardReply)) == 0
        assert session.scalar(select(BoardPost.department_id)) is not None


def test_wrong_order_is_a_conflict(client, people, worker):
    _case, post_id = posted_case(client, people, worker)
    response = action(client, people["jcy"], post_id, "answer", text="已处理完毕")
    assert response.status_code == 409 and response.json()["code"] == "accept_first"
    assert action(client, people["jcy"], post_id, "accept").status_code == 200
    assert action(client, people["jcy"], post_id, "accept").status_code == 409
    assert action(client, people["jcy"], 99999, "accept").status_code == 404


@pytest.mark.parametrize("table", ["board_posts", "board_replies", "board_events"])
def test_nothing_on_the_board_can_be_deleted(client, people, worker, db, table):
    _case, post_id = posted_case(client, people, worker)
    action(client, people["jcy"], post_id, "accept")
    with pytest.raises(DBAPIError, match=f"{table} rows are never deleted"):
        with db.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM {table}"))
    if table != "board_posts":
        with pytest.raises(DBAPIError, match=f"{table} rows are never updated"):
            with db.engine.begin() as connection:
                connection.execute(text(f"UPDATE {table} SET text = 'x'"))
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BoardPost)) == 1


def test_no_delete_route_exists(client, people, worker):
    _case, post_id = posted_case(client, people, worker)
    assert client.delete(f"/api/v1/board/posts/{post_id}", headers=auth(people["jcy"])).status_code == 405
