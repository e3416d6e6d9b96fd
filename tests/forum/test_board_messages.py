"""The spokesperson's board says what was done, its header is not the public board's, and the
public legend explains every colour; error pages offer the way back, not the sign-in, once signed in."""
from __future__ import annotations

import re

from bridge.db.models import BoardPostState
from bridge.forum.builtin import board
from tests.forum.test_builtin_pages import csrf, pages, sign_in  # noqa: F401 - pages is a fixture
from tests.forum.test_builtin_support import file_case, read_case, run


def success(html: str) -> str | None:
    found = re.search(r'<p class="success" role="status">([^<]*)</p>', html)
    return found.group(1) if found else None


def brand(html: str) -> str:
    return re.search(r'<a class="brand"[^>]*>([^<]*)</a>', html).group(1)


def test_each_action_says_what_was_done_once(pages, people, worker):  # noqa: F811
    case = file_case(pages, people)
    run(worker.run_once())
    post_id = read_case(pages, people, case["number"])["forum_url"].rsplit("/", 1)[1]
    title, number = case["title"], case["number"]
    sign_in(pages, "fyr-jcy")
    token = csrf(pages.get("/desk/board/").text)

    accepted = pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token})
    assert accepted.status_code == 200 and accepted.url.path == "/desk/board/"
    assert success(accepted.text) == f"已受理：“{title}”（{number}）。"
    again = pages.get("/desk/board/?done=accept")
    assert success(again.text) is None  # shown once: a reload or a crafted link says nothing

    forwarded = pages.post(f"/desk/board/posts/{post_id}/forward",
                           data={"csrf_token": token, "to_department": "CITY-ZJJ", "note": "已转市住建局办理。"})
    assert success(forwarded.text) == f"已转交给市住房和城乡建设局：“{title}”（{number}）。"

    pages.post("/desk/board/logout", data={"csrf_token": token})
    sign_in(pages, "fyr-zjj")
    token = csrf(pages.get("/desk/board/?lang=en").text)
    pages.post(f"/desk/board/posts/{post_id}/accept", data={"csrf_token": token})
    answered = pages.post(f"/desk/board/posts/{post_id}/answer", data={"csrf_token": token, "text": "已办结。"})
    assert success(answered.text) == f"Answered: “{title}” ({number})."
    refused = pages.post(f"/desk/board/posts/{post_id}/answer", data={"csrf_token": token, "text": "又一次"})
    assert refused.status_code == 409 and success(refused.text) is None


def test_private_pages_do_not_say_public_board(pages, people):  # noqa: F811
    login = pages.get("/desk/board/login")
    assert "公开版块" not in brand(login.text) and "网络发言人工作页" in brand(login.text)
    sign_in(pages, "fyr-jcy")
    work = pages.get("/desk/board/").text
    header = re.search(r"<header.*?</header>", work, re.S).group(0)
    assert "公开版块" not in header and "网络发言人工作页" in brand(work)
    assert 'href="/board/?unit=CITY-JCY"' in header  # the public view is one link away
    assert "公开版块" in brand(pages.get("/board/").text)


def test_the_legend_lists_every_colour_and_status(pages):  # noqa: F811
    legend = re.search(r'<p class="legend">.*?</p>', pages.get("/board/").text, re.S).group(0)
    shown = re.findall(r'data-colour="(\w+)">([^<]+)<', legend)
    assert [status for _, status in shown] == ["未受理", "已受理", "已答复", "已受理（追问待答复）"]
    assert set(shown) == {(board.COLOUR[s], board.status_label(s)) for s in BoardPostState}
    assert {colour for colour, _ in shown} == set(board.COLOUR.values())


def test_board_error_pages_offer_the_way_back_when_signed_in(pages, people):  # noqa: F811
    public = pages.get("/board/threads/9999")
    assert public.status_code == 404
    assert 'href="/desk/board/login"' in public.text and 'href="/desk/start"' not in public.text
    sign_in(pages, "fyr-jcy")
    expired = pages.post("/desk/board/posts/1/accept", data={"csrf_token": "stale"})
    assert expired.status_code == 403 and "表单已过期" in expired.text
    assert 'href="/desk/start"' in expired.text and "/desk/board/login" not in expired.text
