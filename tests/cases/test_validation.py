"""The case form's pure rules: phones, surnames, messages in both locales."""
from __future__ import annotations

import pytest

from bridge.cases.messages import pick_locale
from bridge.cases.validation import display_phone, is_mobile, normalise_phone, validate_case
from bridge.db.models import CaseChannel, Honorific
from tests.cases.conftest import valid_form


@pytest.mark.parametrize("typed, stored", [
    ("13912345678", "+8613912345678"),
    ("139 1234 5678", "+8613912345678"),
    ("139-1234-5678", "+8613912345678"),
    ("+86 139 1234 5678", "+8613912345678"),
    ("１３９１２３４５６７８", "+8613912345678"),
    ("0570-1234567", "+865701234567"),
    ("(0570)1234567", "+865701234567"),
    ("05701234567", "+865701234567"),
    ("010-12345678", "+861012345678"),
])
def test_phone_numbers_are_stored_in_e164(typed, stored):
    assert normalise_phone(typed) == stored


@pytest.mark.parametrize("typed", ["1234567", "12345678901", "96811", "0570 123456", "+1 650 253 0000",
                                   "139abc45678", "", "4008208820"])
def test_not_a_chinese_subscriber_number(typed):
    assert normalise_phone(typed) is None


def test_display_and_mobile():
    assert display_phone("+8613912345678") == "139 1234 5678"
    assert display_phone("+865701234567") == "0570 123 4567"
    assert is_mobile("+8613912345678") and not is_mobile("+865701234567")


def test_a_valid_form_is_cleaned():
    draft, errors = validate_case(valid_form(title="  路口垃圾  ", department="city-ljq"))
    assert errors == []
    assert draft.title == "路口垃圾"
    assert draft.department == "CITY-LJQ"
    assert draft.caller_phone == "+8613912345678"
    assert draft.caller_honorific is Honorific.MS
    assert draft.channel is CaseChannel.PHONE
    assert draft.caller_public_name == "朱女士"


def test_defaults():
    draft, errors = validate_case(valid_form(callback_wanted=None, sms_consent=None, channel=None,
                                             call_linkedid=None, caller_full_name=None, best_time=None,
                                             operator_notes=None, location=None))
    assert errors == []
    assert draft.callback_wanted is True and draft.sms_consent is False and draft.channel is CaseChannel.PHONE


def test_form_values_from_an_html_form():
    draft, errors = validate_case(valid_form(callback_wanted="on", sms_consent="1"))
    assert errors == [] and draft.callback_wanted and draft.sms_consent


@pytest.mark.parametrize("surname", ["朱", "欧阳", "Smith", "O'Brien", "García", "Van Dyke"])
def test_surnames_allowed(surname):
    _, errors = validate_case(valid_form(caller_surname=surname, caller_full_name=None))
    assert errors == []


@pytest.mark.parametrize("surname", ["朱小红", "朱1", "1", "Smith2", "朱S", "-", "A" * 17])
def test_surnames_refused(surname):
    _, errors = validate_case(valid_form(caller_surname=surname, caller_full_name=None))
    assert [(e.field, e.message_id) for e in errors] == [("caller_surname", "surname_invalid")]


def test_every_problem_at_once_in_form_order_in_both_locales():
    _, errors = validate_case({"caller_phone": "123", "title": "x" * 61, "description": "短"})
    fields = [e.field for e in errors]
    assert fields == ["caller_surname", "caller_honorific", "caller_phone", "department", "title", "description"]
    assert errors[0].message() == "请填写姓。"
    assert errors[0].message("en") == "Please fill in the surname."
    assert "0570-1234567" in errors[2].message()
    assert errors[4].message() == "标题不能超过 60 个字（现在 61 个字）。"
    assert errors[4].message("en") == "The title must be at most 60 characters (it has 61)."


@pytest.mark.parametrize("header, locale", [
    (None, "zh_CN"), ("en", "en"), ("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
    ("fr", "zh_CN"), ("fr, en;q=0.5", "en"),
])
def test_locale_from_accept_language(header, locale):
    assert pick_locale(header) == locale


def test_both_catalogues_have_every_message_and_label():
    """Every message id, field label and name of private data is in the zh_CN and en catalogues
    (tests/i18n checks the catalogues themselves)."""
    from bridge.cases.messages import FIELD_LABELS, FINDING_NAMES, MESSAGES, finding_name, label, translate
    from bridge.cases.validation import FIELDS
    from bridge.i18n import translations

    assert set(FIELD_LABELS) >= set(FIELDS)
    assert set(FINDING_NAMES) == {"phone", "id_card", "full_name"}
    zh = translations("zh_CN")
    for msgid in MESSAGES.values():
        assert zh.gettext(msgid) != msgid, f"no Chinese for {msgid!r}"
    for field in FIELD_LABELS:
        assert label(field) != label(field, "en"), field
    for kind in FINDING_NAMES:
        assert finding_name(kind) != finding_name(kind, "en"), kind
    for message_id in MESSAGES:
        assert translate(message_id, "zh_CN", field="title") != translate(message_id, "en", field="title")
