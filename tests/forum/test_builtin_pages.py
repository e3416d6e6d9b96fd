"""The builtin board's pages: the public read-only view and the spokesperson's sign-in and actions."""
from __future__ import annotations

import re

import pytest

from bridge.forum.builtin.pages import mount_board
from tests.forum.test_builtin_support import file_case, read_case, run


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


def test_board_pages_follow_the_language_choice(pages, people, worker):
    """The texts come from the catalogues: zh_CN by default, English by ?lang= or Accept-Language."""
    file_case(pages, people)
    run(worker.run_once())
    chinese = pages.get("/board/").text
    assert 'lang="zh-CN"' in chinese and "网络问政公开版块" in chinese and "发帖时间" in chinese
    assert "未受理" in chinese and "Public board" not in chinese
    english = pages.get("/board/?lang=en")
    assert english.status_code == 200 and '<html lang="en">' in english.text
    assert "Public board" in english.text and "Posted at" in english.text and "not accepted" in english.text
    assert "网络问政公开版块" not in english.text and "未受理" not in english.text
    post_id = re.search(r'href="/board/threads/(\d+)\?lang=en"', english.text).group(1)  # links keep ?lang=
    thread = pages.get(f"/board/threads/{post_id}?lang=en").text
    assert "Back to the board" in thread and "Replies" in thread
    assert "Public board" in pages.get("/board/", headers={"Accept-Language": "en"}).text
    missing = pages.get("/board/threads/9999?lang=en")
    assert missing.status_code == 404 and "There is no post 9999." in missing.text
    assert "没有编号为 9999 的帖子。" in pages.get("/board/threads/9999").text

    page = pages.get("/desk/board/login?lang=en")
    assert "Spokesperson sign-in" in page.text
    response = pages.post("/desk/board/login", data={"username": "operator", "password": "correct horse battery",
                                                      "csrf_token": csrf(page.text)})
    assert response.status_code == 403 and "This account is not a unit&#39;s spokesperson." in response.text
    page = pages.get("/desk/board/login?lang=zh_CN")
    response = pages.post("/desk/board/login", data={"username": "operator", "password": "correct horse battery",
                                                      "csrf_token": csrf(page.text)})
    assert response.status_code == 403 and "该账号不是单位网络发言人。" in response.text


def test_spokesperson_pages_in_english(pages, people, worker):
    file_case(pages, people)
    run(worker.run_once())
    pages.get("/desk/board/login?lang=en")  # remembered in the desk's session
    sign_in(pages, "fyr-jcy")
    board = pages.get("/desk/board/")
    assert "Board of " in board.text and "Accept" in board.text and "Forward to unit" in board.text
    post_id = re.search(r'id="post-(\d+)"', board.text).group(1)
    token = csrf(board.text)
    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": ""})
    assert response.status_code == 422 and "The note to the poster is required." in response.text
    pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token})
    board = pages.get("/desk/board/?done=accept").text
    assert "Done." in board and 'data-kind="accepted"' in board and "· Accepted ·" in board
