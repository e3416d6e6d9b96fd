"""The builtin board's pages: the public read-only view and the spokesperson's sign-in and actions."""
from __future__ import annotations

import re

import pytest

from bridge.forum.builtin.pages import mount_board
from tests.forum.test_builtin_support import (  # noqa: F401 - fixtures
    app, client, deadlines, file_case, forum, live, people, read_case, run, site_config, worker,
)


@pytest.fixture
def pages(app, client):
    if not any(getattr(r, "path", "") == "/board/" for r in app.routes):
        mount_board(app)
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, username: str) -> None:
    page = client.get("/desk/board/login")
    response = client.post("/desk/board/login", data={"username": username, "password": "correct horse battery",
                                                       "csrf_token": csrf(page.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text


def test_public_board_shows_colours_and_no_private_data(pages, people, worker):
    case = file_case(pages, people)
    run(worker.run_once())
    post_id = read_case(pages, people, case["number"])["forum_url"].rsplit("/", 1)[1]
    listing = pages.get("/board/?unit=CITY-JCY")
    assert listing.status_code == 200
    assert 'class="thread blue"' in listing.text and "未受理" in listing.text and case["title"] in listing.text
    thread = pages.get(f"/board/threads/{post_id}")
    assert thread.status_code == 200 and "朱女士" in thread.text and "96811" in thread.text
    for private in ("朱小红", "13912345678", "139 1234 5678", "7654321"):
        assert private not in thread.text
    assert pages.get("/board/threads/9999").status_code == 404


def test_spokesperson_accepts_forwards_and_answers_on_the_pages(pages, people, worker):
    case = file_case(pages, people)
    run(worker.run_once())
    number = case["number"]
    post_id = read_case(pages, people, number)["forum_url"].rsplit("/", 1)[1]

    assert pages.get("/desk/board/", follow_redirects=False).status_code == 303  # not signed in
    sign_in(pages, "fyr-jcy")
    board = pages.get("/desk/board/")
    assert board.status_code == 200 and f'id="post-{post_id}"' in board.text
    token = csrf(board.text)

    assert pages.post(f"/desk/board/posts/{post_id}/accept", data={}, follow_redirects=False).status_code == 403
    response = pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert read_case(pages, people, number)["state"] == "accepted"

    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": ""})
    assert response.status_code == 422 and "请填写给发帖人的转办说明" in response.text
    response = pages.post(f"/desk/board/posts/{post_id}/forward", follow_redirects=False,
                          data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": "已转市住建局办理。"})
    assert response.status_code == 303
    assert read_case(pages, people, number)["department"] == "CITY-ZJJ"
    # No longer on this unit's board; another unit's post is refused.
    assert f'id="post-{post_id}"' not in pages.get("/desk/board/").text
    response = pages.post(f"/desk/board/posts/{post_id}/answer", data={"csrf_token": token, "text": "已办结"})
    assert response.status_code == 403

    pages.post("/desk/board/logout", data={"csrf_token": token})
    sign_in(pages, "fyr-zjj")
    token = csrf(pages.get("/desk/board/").text)
    pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token})
    response = pages.post(f"/desk/board/posts/{post_id}/answer", follow_redirects=False,
                          data={"csrf_token": token, "text": "经核实已办结，请留意通知。"})
    assert response.status_code == 303
    assert read_case(pages, people, number)["state"] == "answered"
    thread = pages.get(f"/board/threads/{post_id}").text
    assert "已转市住建局办理。" in thread and "经核实已办结" in thread and 'thread green' in thread


def test_operators_cannot_sign_in_as_spokespeople(pages, people):
    page = pages.get("/desk/board/login")
    response = pages.post("/desk/board/login", data={"username": "operator", "password": "correct horse battery",
                                                      "csrf_token": csrf(page.text)})
    assert response.status_code == 403
