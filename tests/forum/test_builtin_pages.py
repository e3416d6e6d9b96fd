"""The builtin board's pages: the public read-only view and the spokesperson's sign-in and actions."""
from __future__ import annotations

import re

import pytest

from bridge.forum.builtin.pages import mount_board
from tests.forum.test_builtin_support import auth, file_case, read_case, run


@pytest.fixture
def pages(app, client):
    if not any(getattr(r, "path", "") == "/board/" for r in app.routes):
        mount_board(app)
    return client


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def forward_select(html: str, post_id) -> str:
    """The "forward to unit" select of one post on a unit's board page."""
    article = re.search(rf'<article[^>]*id="post-{post_id}".*?</article>', html, re.S).group(0)
    return re.search(r'<select name="to_department"[^>]*>.*?</select>', article, re.S).group(0)


def options(select_html: str) -> list[tuple[str, str, bool]]:
    """(value, text, selected) of each option."""
    return [(value, text.strip(), "selected" in attrs) for value, attrs, text
            in re.findall(r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', select_html)]


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
    # Chinese punctuation in Chinese labels (a full-width colon, no ASCII one)
    assert "图例：" in listing.text and "图例:" not in listing.text
    assert "单位：市人民检察院" in thread.text and "单位:" not in thread.text
    assert "Legend:" in pages.get("/board/?lang=en").text
    assert "Unit: " in pages.get(f"/board/threads/{post_id}?lang=en").text
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

    # The unit to forward to starts empty: nothing is forwarded to the first unit of the list by mistake.
    choices = options(forward_select(board.text, post_id))
    assert choices[0] == ("", "请选择转办单位", True) and sum(selected for *_, selected in choices) == 1
    assert ("CITY-ZJJ", "市住房和城乡建设局", False) in choices and "CITY-JCY" not in dict((v, t) for v, t, _ in choices)
    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "", "note": "已转相关单位办理。"})
    assert response.status_code == 422 and "请选择转办单位。" in response.text
    refused = forward_select(response.text, post_id)
    assert 'aria-invalid="true"' in refused and options(refused)[0] == ("", "请选择转办单位", True)
    assert "已转相关单位办理。</textarea>" in response.text  # what was typed stays
    assert read_case(pages, people, number)["state"] == "posted"  # nothing happened to the post
    assert read_case(pages, people, number)["department"] == "CITY-JCY"

    assert pages.post(f"/desk/board/posts/{post_id}/accept", data={}, follow_redirects=False).status_code == 403
    response = pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert read_case(pages, people, number)["state"] == "accepted"

    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": ""})
    assert response.status_code == 422 and "请填写给发帖人的转办说明" in response.text
    assert options(forward_select(response.text, post_id))[0] == ("", "请选择转办单位", False)
    assert ("CITY-ZJJ", "市住房和城乡建设局", True) in options(forward_select(response.text, post_id))
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
    assert options(forward_select(board.text, post_id))[0] == ("", "Choose the unit", True)
    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": ""})
    assert response.status_code == 422 and "The note to the poster is required." in response.text
    response = pages.post(f"/desk/board/posts/{post_id}/forward",
                          data={"csrf_token": token, "to_department": "", "note": "Sent on."})
    assert response.status_code == 422 and "Choose the unit to forward to." in response.text
    board = pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token}).text
    assert "Accepted: “" in board and 'data-kind="accepted"' in board and "· Accepted ·" in board


def test_the_api_refuses_a_forward_without_a_unit_as_the_page_does(pages, people, worker):
    """The page's refusal is the JSON API's (the same rule): field to_department, code required."""
    case = file_case(pages, people)
    run(worker.run_once())
    post_id = read_case(pages, people, case["number"])["forum_url"].rsplit("/", 1)[1]
    for body in ({"note": "已转相关单位办理。"}, {"to_department": "", "note": "已转相关单位办理。"},
                 {"to_department": "  ", "note": "已转相关单位办理。"}):
        response = pages.post(f"/api/v1/board/posts/{post_id}/forward", json=body, headers=auth(people["jcy"]))
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [{"field": "to_department", "code": "required",
                                              "message": "请选择转办单位。"}]
    response = pages.post(f"/api/v1/board/posts/{post_id}/forward", json={"note": "Sent on."},
                          headers={**auth(people["jcy"]), "Accept-Language": "en"})
    assert response.json()["detail"][0]["message"] == "Choose the unit to forward to."
    assert read_case(pages, people, case["number"])["department"] == "CITY-JCY"
