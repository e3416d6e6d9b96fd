"""The desk's catalogues: every page text has its Chinese translation; English works too; and no page
shown in Chinese has English words left in it."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from bridge.db.models import BoardPost, Case, Role
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.outbox import OutboxWorker
from bridge.forum.service import Deadlines
from bridge.i18n import LOCALE_DIR, translations
from tests.callbacks.desk_support import answered_task, missed_call_task
from tests.desk.conftest import LINKEDID, PASSWORD, csrf_of, sign_in, valid_form

DESK = Path(__file__).resolve().parents[2] / "bridge" / "desk"


def test_every_message_is_translated_to_chinese():
    ids = {msg[2] if isinstance(msg[2], str) else msg[2][0]
           for msg in extract_from_dir(str(DESK), method_map=[("**.py", "python"), ("templates/**.html", "jinja2")])}
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string
                  and all(m.string if isinstance(m.string, tuple) else [m.string])}
    assert ids and not ids - translated, f"untranslated: {sorted(ids - translated)}"
    assert translations("zh_CN").gettext("Sign in") == "登录"
    assert translations("en").gettext("Sign in") == "Sign in"


def test_form_in_english(operator):
    page = operator.get("/desk/cases/new?lang=en")
    assert "Public part: goes to the forum" in page.text and '<html lang="en">' in page.text
    response = operator.post("/desk/cases", data={"csrf_token": csrf_of(page.text),
                                                  **valid_form(caller_surname="", caller_phone="12345")})
    assert response.status_code == 422
    assert "Please fill in the surname." in response.text
    assert "“12345” is not a valid Chinese phone number" in response.text


# ---------------------------------------------------------------- every page in Chinese
#
# Every page of the desk, the board (the spokesperson's and the public one) and the admin pages,
# as each role and signed out, in zh_CN: no English word may be left in what a person sees (the
# text, and the placeholder/title/aria-label/alt/button values).  The pages are the app's own GET
# routes outside the API, found from its router, so a new page is visited without editing this
# test; a route with path parameters needs a sample URL below (or a reason it is no page).

# Routes that are not pages (by path; everything under /api/ is the JSON API): why each is skipped.
NOT_PAGES = {
    "/desk/events": "the live event stream (never ends)",
    "/desk/recordings/{linkedid}": "a call's recording (audio)",
    "/desk/callbacks/{task_id}/attempts/{attempt_id}/recording": "an attempt's recording (audio)",
    "/healthz": "the components' state for monitoring (JSON)",
    "/favicon.ico": "the site's icon", "/favicon.svg": "the site's icon",
}
# Words that are not English left untranslated, each for a reason:
ALLOWED_WORDS = {
    "gaj",  # the unit search's example of pinyin initials (公安局), what an operator types
    "CSV", "XLSX",  # the export formats' names, as Excel and WPS show them
    "GB",  # GB/T 33358, the national standard the 15-second answer share is named by
}
# The fixtures' data, shown as typed (usernames, unit codes, case numbers): data, not texts.
DATA = re.compile(r"\b(?:operator|supervisor|admin|spokesperson|person)\b|\b[A-Z]+(?:-[A-Z0-9]+)+\b"
                  r"|\b\d[\d-]*\b")
WORD = re.compile(r"[A-Za-z]{2,}")
SHOWN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")


class VisibleText(HTMLParser):
    """The text a person sees, plus the attributes a browser shows; not checked: script and style,
    ``<code>`` (a command to type, e.g. ``hotline-bridge departments import FILE``), ``<kbd>`` (a key
    as its keycap reads, e.g. Ctrl), and elements
    in another script on purpose: ``lang="en"`` (the language switch's "English") and pinyin
    (``lang="zh-Latn-pinyin"``: the units' initials, which operators type to find a unit)."""

    HIDDEN = {"script", "style", "code", "kbd"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []  # the open elements whose text is not checked

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        hidden = tag in self.HIDDEN or (values.get("lang") or "").startswith(("en", "zh-Latn"))
        if not self.skipping:
            self.parts.extend(values[a] for a in SHOWN_ATTRIBUTES if values.get(a))
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.parts.append(values["value"])
        if tag not in self.VOID and (self.skipping or hidden):
            self.skipping.append(tag)

    def handle_endtag(self, tag):
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def english_words(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    text = DATA.sub(" ", " ".join(parser.parts))
    return sorted({w for w in WORD.findall(text) if w not in ALLOWED_WORDS})


def test_the_visible_text_reader():
    html = ('<html lang="zh-CN"><head><title>话务台</title><style>.a{color:red}</style></head><body>'
            '<script>var x = "hidden";</script><p>已受理 Done</p><a lang="en">English</a>'
            '<input placeholder="Search"><input type="submit" value="Go"><br><p title="Tip">CITY-LJQ 96811</p>'
            '<p>导入：<code>hotline-bridge departments import FILE</code></p><td lang="zh-Latn-pinyin">sgaj</td>')
    assert english_words(html) == ["Done", "Go", "Search", "Tip"]


def get_routes(routes, prefix: str = "") -> Iterator[str]:
    """The paths of the GET routes, also inside included routers (FastAPI keeps those apart)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from get_routes(inner.routes, prefix + route.include_context.prefix)
        elif "GET" in (getattr(route, "methods", None) or ()):
            yield prefix + route.path


@pytest.fixture
def sample_data(desk_app, db, operator):
    """A filed case (from the answered call), posted on the builtin board (not accepted yet); a second one
    answered with its callback task; a missed call's task."""
    page = operator.get(f"/desk/cases/new?call={LINKEDID}")
    filed = operator.post("/desk/cases", data={"csrf_token": csrf_of(page.text), **valid_form()})
    assert filed.status_code == 303, filed.text
    config = desk_app.state.config
    worker = OutboxWorker(db, BuiltinForum(db, config.web.public_url), backoff_s=config.forum.retry_backoff_s,
                          deadlines=Deadlines.from_config(config), live=desk_app.state.live)
    asyncio.run(worker.run_once())
    policy = desk_app.state.callback_policy
    answered_task(db, policy)
    missed_call_task(db, policy, "1764133300.7", "+8613800138000", datetime(2026, 12, 3, 1, 0, tzinfo=timezone.utc))
    with db.session() as session:
        number = session.query(Case.number).order_by(Case.id).first()[0]
        post_id = session.query(BoardPost.id).first()[0]
    return {"number": number, "post_id": post_id}


def page_urls(app, sample: dict) -> list[str]:
    samples = {
        "/desk/cases/{number}": [f"/desk/cases/{sample['number']}", f"/desk/cases/{sample['number']}?filed=1",
                                 "/desk/cases/2020999999"],
        "/board/threads/{post_id}": [f"/board/threads/{sample['post_id']}", "/board/threads/9999"],
        "/desk/reports/callbacks/cases/{number}/timeline": [f"/desk/reports/callbacks/cases/{sample['number']}/timeline"],
        "/desk/reports/units/{code}": ["/desk/reports/units/CITY-LJQ", "/desk/reports/units/CITY-FGW",
                                       "/desk/reports/units/CITY-LJQ?from=2026-11-01&to=2026-12-01"],
    }
    urls, unknown = [], []
    for path in dict.fromkeys(get_routes(app.router.routes)):
        if path.startswith("/api/") or path in NOT_PAGES:
            continue
        if "{" in path:
            if path not in samples:
                unknown.append(path)
            urls.extend(samples.get(path, []))
        else:
            urls.append(path)
    assert not unknown, f"give these pages a sample URL (or a reason in NOT_PAGES): {unknown}"
    extra = [f"/desk/cases/new?call={LINKEDID}", "/desk/cases?overdue=1", "/board/?unit=CITY-LJQ",
             "/desk/reports/callbacks?from=2026-11-01&to=2027-01-01&outcome=pending&satisfaction=none&waiting_hours=1",
             "/desk/reports/callbacks?overdue=1&unit=CITY-LJQ", "/desk/reports/callbacks?from=yesterday",
             "/desk/reports/callbacks/print?outcome=none", "/desk/reports/callbacks/export?format=pdf",
             "/transparency?period=this_year", "/desk/reports?from=2026-11-01&to=2027-01-01",
             "/desk/reports?from=yesterday",
             "/desk/reports/calls?from=2026-11-01&to=2027-01-01", "/desk/reports/calls?disposition=failed&caller=138",
             "/desk/reports/calls?from=yesterday", "/desk/reports/units?from=2026-11-01&to=2027-01-01",
             "/desk/reports/units?from=yesterday"]
    return urls + extra


ROLES = [None, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.SPOKESPERSON]

# A constraint the browser checks itself, in its own words and language, before the page can.
BROWSER_CHECKED = re.compile(r"<(?:input|select|textarea)\b[^>]*\b(?:required|minlength|pattern)\b", re.I)


def forms_the_browser_checks(html: str) -> list[str]:
    """The forms (their action) with a browser-checked constraint but no ``novalidate``: their
    tooltips would stand in for the page's own messages (issue 11)."""
    found = []
    for form in re.finditer(r"<form\b([^>]*)>(.*?)</form>", html, re.S | re.I):
        attributes, body = form.groups()
        if BROWSER_CHECKED.search(body) and "novalidate" not in attributes:
            action = re.search(r'action="([^"]*)"', attributes)
            found.append(action.group(1) if action else "(no action)")
    return found


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value if r else "signed-out")
def test_every_page_is_chinese(desk_app, sample_data, role):
    checked, problems = 0, []
    with TestClient(desk_app) as client:
        if role is Role.SPOKESPERSON:
            page = client.get("/desk/board/login")
            signed = client.post("/desk/board/login", follow_redirects=False, data={
                "csrf_token": csrf_of(page.text), "username": role.value, "password": PASSWORD})
            assert signed.status_code == 303
        elif role is not None:
            assert sign_in(client, role.value).status_code == 200  # followed to the desk
        for url in page_urls(desk_app, sample_data):
            response = client.get(url, headers={"Accept-Language": "zh-CN"})
            if "text/html" not in response.headers.get("content-type", ""):
                continue
            checked += 1
            if "<html" in response.text and 'lang="zh-CN"' not in response.text:  # a page, not an htmx fragment
                problems.append(f"{url} -> {response.url.path}: not a zh-CN page")
            words = english_words(response.text)
            if words:
                problems.append(f"{url} -> {response.url.path} ({response.status_code}): {words}")
            for action in forms_the_browser_checks(response.text):
                problems.append(f"{url}: the form {action} lets the browser's tooltips speak (add novalidate)")
    assert checked >= 10
    assert not problems, "English left on the zh-CN pages:\n" + "\n".join(problems)
