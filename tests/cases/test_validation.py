"""The case form's pure rules: phones, surnames, messages in both locales."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from bridge.cases.messages import pick_locale
from bridge.cases.validation import display_phone, is_mobile, normalise_phone, validate_case
from bridge.db.models import CallbackBestTime, CaseChannel, Honorific
from tests.cases.conftest import valid_form

TODAY = date(2026, 11, 25)


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
    draft, errors = validate_case(valid_form(title="  路口垃圾  ", department="city-ljq"), today=TODAY)
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
                                             operator_notes=None, location=None), today=TODAY)
    assert errors == []
    assert draft.callback_wanted is True and draft.sms_consent is False and draft.channel is CaseChannel.PHONE


def test_form_values_from_an_html_form():
    draft, errors = validate_case(valid_form(callback_wanted="on", sms_consent="1"), today=TODAY)
    assert errors == [] and draft.callback_wanted and draft.sms_consent


@pytest.mark.parametrize("surname", ["朱", "欧阳", "Smith", "O'Brien", "García", "Van Dyke"])
def test_surnames_allowed(surname):
    _, errors = validate_case(valid_form(caller_surname=surname, caller_full_name=None), today=TODAY)
    assert errors == []


@pytest.mark.parametrize("surname", ["朱小红", "朱1", "1", "Smith2", "朱S", "-", "A" * 17])
def test_surnames_refused(surname):
    _, errors = validate_case(valid_form(caller_surname=surname, caller_full_name=None), today=TODAY)
    assert [(e.field, e.message_id) for e in errors] == [("caller_surname", "surname_invalid")]


def test_every_problem_at_once_in_form_order_in_both_locales():
    _, errors = validate_case({"caller_phone": "123", "title": "x" * 61, "description": "短"}, today=TODAY)
    fields = [e.field for e in errors]
    assert fields == ["caller_surname", "caller_honorific", "caller_phone", "department", "title", "description"]
    assert errors[0].message() == "请填写姓。"
    assert errors[0].message("en") == "Please fill in the surname."
    assert "0570-1234567" in errors[2].message()
    assert errors[4].message() == "标题不能超过 60 个字（现在 61 个字）。"
    assert errors[4].message("en") == "The title must be at most 60 characters (it has 61)."


def test_the_best_time_is_a_clicked_choice_any_by_default():
    for code in ("morning", "afternoon", "evening", "any"):
        draft, errors = validate_case(valid_form(best_time=f" {code} "), today=TODAY)
        assert errors == [] and draft.best_time is CallbackBestTime(code)
    for missing in (None, "", "  "):
        draft, errors = validate_case(valid_form(best_time=missing), today=TODAY)
        assert errors == [] and draft.best_time is CallbackBestTime.ANY and draft.callback_not_before is None


@pytest.mark.parametrize("typed", ["工作日下午", "上午", "Morning", "night"])
def test_free_text_as_before_is_refused_naming_the_choices(typed):
    _, [error] = validate_case(valid_form(best_time=typed), today=TODAY)
    assert (error.field, error.message_id) == ("best_time", "best_time_invalid")
    assert error.message("en") == "The best time to call back must be one of: morning, afternoon, evening, any."
    assert error.message() == "方便回电的时间只能是以下之一：morning, afternoon, evening, any。"


@pytest.mark.parametrize("days", [0, 1, 60])
def test_a_not_before_day_from_today_up_to_sixty_days_ahead(days):
    day = TODAY + timedelta(days=days)
    draft, errors = validate_case(valid_form(callback_not_before=day.isoformat()), today=TODAY)
    assert errors == [] and draft.callback_not_before == day


@pytest.mark.parametrize("typed, code, english, chinese", [
    ("2026-11-24", "date_in_past", "The first day to call back 2026-11-24 has passed; choose today or a later day.",
     "最早回电日期 2026-11-24 已经过去，请选今天或以后的日子。"),
    ("2027-01-25", "date_too_far", "The first day to call back can be at most 60 days ahead (it is 2027-01-25).",
     "最早回电日期最多只能在 60 天以内（现在是 2027-01-25）。"),
    ("2026-02-30", "date_invalid", "The first day to call back \u201c2026-02-30\u201d is not a date; write it as "
     "YYYY-MM-DD.", "最早回电日期“2026-02-30”不是有效的日期，请按 YYYY-MM-DD 填写。"),
    ("26.11.2026", "date_invalid", None, None),
    ("20261126", "date_invalid", None, None),
    ("２０２６-１１-２６", "date_invalid", None, None),
])
def test_a_not_before_day_in_the_past_too_far_or_not_a_date(typed, code, english, chinese):
    _, [error] = validate_case(valid_form(callback_not_before=typed), today=TODAY)
    assert (error.field, error.message_id) == ("callback_not_before", code)
    if english:
        assert (error.message("en"), error.message()) == (english, chinese)


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
