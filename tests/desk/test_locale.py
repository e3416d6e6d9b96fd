"""The desk's catalogues: every page text has its Chinese translation; English works too."""
from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bridge.i18n import LOCALE_DIR, translations
from tests.desk.conftest import csrf_of, valid_form

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
