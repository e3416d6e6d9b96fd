"""The case form's rules (pure: no database, no clock).

:func:`validate_case` takes what the operator (or an API client) sent, as a
mapping of field name to value, and the site's date today, and returns the
cleaned :class:`CaseDraft` or the list of :class:`FieldError` (every problem at
once, in form order).  The rules that need the database (the unit exists and is
not retired, the call's linkedid is known) are in :mod:`bridge.cases.service`,
which adds their errors to these.

Phone numbers are stored in E.164 form (``+8613912345678``,
``+865701234567``): one spelling per number, whatever the operator typed
(spaces, dashes, full-width digits, ``0570-1234567``), so a number can be
searched and compared with the PBX's caller number through
:func:`normalise_phone`.  :func:`display_phone` gives the national form back.

The best time to call back is one of the codes of
:class:`bridge.db.models.CallbackBestTime` (``any`` when none is given), with an
optional first day the caller may be called (``callback_not_before``: a
``YYYY-MM-DD`` date in the site's zone, from today up to
:data:`NOT_BEFORE_MAX_DAYS` ahead).  Free text, as cases were filed before, is
refused, naming the codes.

Messages are message ids with parameters (:mod:`bridge.cases.messages`),
rendered in zh_CN by default or in English.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from bridge.cases.messages import DEFAULT_LOCALE, translate
from bridge.cases.privacy import PUBLIC_FIELDS, find_private_data, fold
from bridge.db.models import CallbackBestTime, CaseChannel, Honorific

# The form's fields, in the order the form shows them (errors come in this order).
FIELDS = (
    "call_linkedid", "channel", "caller_surname", "caller_honorific", "caller_full_name",
    "caller_phone", "caller_phone_alt", "department", "location", "title", "description",
    "callback_wanted", "sms_consent", "best_time", "callback_not_before", "operator_notes",
    "voice_callback",
)

TITLE_MAX = 60
DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000
LOCATION_MAX = 100
FULL_NAME_MAX = 64
BEST_TIME_CODES = tuple(b.value for b in CallbackBestTime)
# A "not before" date further ahead than this is a typing mistake, not a caller's wish.
NOT_BEFORE_MAX_DAYS = 60
OPERATOR_NOTES_MAX = 4000
LINKEDID_MAX = 64
DEPARTMENT_MAX = 32
SURNAME_MAX = 16
PHONE_MAX = 32

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef"
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"
_CJK_SURNAME = re.compile(f"^[{_CJK}]{{1,2}}$")
_LATIN_SURNAME = re.compile(f"^[{_LATIN}](?:[{_LATIN}'\u2019 -]{{0,{SURNAME_MAX - 2}}}[{_LATIN}])?$")
# Both surname rules as one regular expression (the API's schema states it).
SURNAME_PATTERN = f"^(?:{_CJK_SURNAME.pattern[1:-1]}|{_LATIN_SURNAME.pattern[1:-1]})$"
_PHONE_CHARS = re.compile(r"^[\d\s()+\-]+$")
_PHONE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_TRUE = {"true", "1", "on", "yes", "是"}
_FALSE = {"false", "0", "off", "no", "否", ""}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: a message id and its parameters."""

    field: str
    message_id: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, locale: str = DEFAULT_LOCALE) -> str:
        return translate(self.message_id, locale, field=self.field, **self.params)

    def as_dict(self, locale: str = DEFAULT_LOCALE) -> dict[str, str]:
        """``{"field", "message", "code"}``: the API's (and the form's) shape of an error."""
        return {"field": self.field, "message": self.message(locale), "code": self.message_id}


class CaseValidationError(Exception):
    """The case was not filed; ``errors`` says why, field by field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = sort_errors(errors)
        super().__init__("; ".join(f"{e.field}: {e.message('en')}" for e in self.errors))

    def as_list(self, locale: str = DEFAULT_LOCALE) -> list[dict[str, str]]:
        return [e.as_dict(locale) for e in self.errors]


def sort_errors(errors: list[FieldError]) -> list[FieldError]:
    order = {name: i for i, name in enumerate(FIELDS)}
    return sorted(errors, key=lambda e: order.get(e.field, len(order)))


@dataclass(frozen=True)
class CaseDraft:
    """A valid case form, cleaned (stripped text, E.164 phones, enums), not yet filed."""

    caller_surname: str
    caller_honorific: Honorific
    caller_phone: str
    department: str
    title: str
    description: str
    channel: CaseChannel = CaseChannel.PHONE
    call_linkedid: str | None = None
    caller_full_name: str = ""
    caller_phone_alt: str = ""
    location: str = ""
    callback_wanted: bool = True
    sms_consent: bool = False
    voice_callback: bool = False
    best_time: CallbackBestTime = CallbackBestTime.ANY
    callback_not_before: date | None = None
    operator_notes: str = ""

    @property
    def caller_public_name(self) -> str:
        """How the forum names the caller: surname + 女士/先生, e.g. 朱女士."""
        return public_name(self.caller_surname, self.caller_honorific)


def public_name(surname: str, honorific: Honorific | str) -> str:
    value = honorific.value if isinstance(honorific, Honorific) else str(honorific)
    return f"{surname}{value}"


# ------------------------------------------------------------------------ phones


def _parse_phone(text: str) -> phonenumbers.PhoneNumber | None:
    folded = fold(text).strip()
    if not folded or not _PHONE_CHARS.match(folded):
        return None
    try:
        return phonenumbers.parse(folded, "CN")
    except phonenumbers.NumberParseException:
        return None


def check_phone(text: str) -> tuple[str, str | None]:
    """``(e164, None)`` for a valid Chinese mobile or fixed-line number, else ``("", message_id)``."""
    number = _parse_phone(text)
    if number is None:
        return "", "phone_invalid"
    if number.country_code != 86:
        return "", "phone_not_chinese" if phonenumbers.is_valid_number(number) else "phone_invalid"
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _PHONE_TYPES:
        return "", "phone_invalid"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def normalise_phone(text: str | None) -> str | None:
    """The stored (E.164) form of a Chinese phone number as typed or as the PBX gives it, else None."""
    if not text:
        return None
    value, problem = check_phone(text)
    return None if problem else value


def is_mobile(e164: str) -> bool:
    number = _parse_phone(e164) if e164 else None
    return number is not None and phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE) and str(number.national_number).startswith("1")


def display_phone(e164: str) -> str:
    """The national way of writing a stored number: 139 1234 5678, 0570 123 4567."""
    number = _parse_phone(e164) if e164 else None
    if number is None:
        return e164 or ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


# ------------------------------------------------------------------------- rules


def _text(data: Mapping[str, Any], name: str, errors: list[FieldError], *, required: bool = False,
          max_length: int | None = None, min_length: int | None = None) -> str:
    value = data.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.append(FieldError(name, "not_text"))
        return ""
    value = value.strip()
    if not value:
        if required:
            errors.append(FieldError(name, "required"))
        return ""
    if max_length is not None and len(value) > max_length:
        errors.append(FieldError(name, "too_long", {"max": max_length, "length": len(value)}))
    elif min_length is not None and len(value) < min_length:
        errors.append(FieldError(name, "too_short", {"min": min_length, "length": len(value)}))
    return value


def _bool(data: Mapping[str, Any], name: str, default: bool, errors: list[FieldError]) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        text = value.strip().lower()
        return default if text == "" else text in _TRUE
    errors.append(FieldError(name, "not_bool"))
    return default


_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _best_time(data: Mapping[str, Any], errors: list[FieldError]) -> CallbackBestTime:
    value = data.get("best_time")
    if isinstance(value, CallbackBestTime):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return CallbackBestTime.ANY
    if not isinstance(value, str):
        errors.append(FieldError("best_time", "not_text"))
        return CallbackBestTime.ANY
    try:
        return CallbackBestTime(value.strip())
    except ValueError:
        errors.append(FieldError("best_time", "best_time_invalid", {"choices": ", ".join(BEST_TIME_CODES)}))
        return CallbackBestTime.ANY


def _not_before(data: Mapping[str, Any], today: date, errors: list[FieldError]) -> date | None:
    """The first day the caller may be called: today or later, at most NOT_BEFORE_MAX_DAYS ahead."""
    name = "callback_not_before"
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, date):
        day = value
    elif not isinstance(value, str):
        errors.append(FieldError(name, "not_text"))
        return None
    else:
        text = value.strip()
        try:
            day = date.fromisoformat(text) if _ISO_DATE.match(text) else None
        except ValueError:
            day = None
        if day is None:
            errors.append(FieldError(name, "date_invalid", {"value": text}))
            return None
    last = today + timedelta(days=NOT_BEFORE_MAX_DAYS)
    if day < today:
        errors.append(FieldError(name, "date_in_past", {"value": day.isoformat()}))
    elif day > last:
        errors.append(FieldError(name, "date_too_far", {"value": day.isoformat(), "max": NOT_BEFORE_MAX_DAYS}))
    return day


def validate_case(data: Mapping[str, Any], *, today: date) -> tuple[CaseDraft | None, list[FieldError]]:
    """Check a case form; ``(draft, [])`` when valid, ``(None, errors)`` otherwise.

    ``today`` is the site's date (its zone's), against which the "not before" date is checked.

    Unknown keys are ignored here (the API refuses them before); every rule of
    the form is applied and every problem reported, the privacy guard included.
    """
    errors: list[FieldError] = []

    linkedid = _text(data, "call_linkedid", errors, max_length=LINKEDID_MAX) or None

    channel_raw = data.get("channel")
    channel = CaseChannel.PHONE
    if isinstance(channel_raw, CaseChannel):
        channel = channel_raw
    elif channel_raw not in (None, ""):
        try:
            channel = CaseChannel(str(channel_raw).strip())
        except ValueError:
            errors.append(FieldError("channel", "channel_invalid"))
    if linkedid and channel != CaseChannel.PHONE:
        errors.append(FieldError("call_linkedid", "call_needs_phone_channel"))

    surname = _text(data, "caller_surname", errors, required=True)
    surname_ok = False
    if surname:
        if _CJK_SURNAME.match(surname) or _LATIN_SURNAME.match(surname):
            surname_ok = True
        else:
            errors.append(FieldError("caller_surname", "surname_invalid"))

    honorific_raw = data.get("caller_honorific")
    honorific: Honorific | None = None
    if isinstance(honorific_raw, Honorific):
        honorific = honorific_raw
    elif honorific_raw is None or (isinstance(honorific_raw, str) and not honorific_raw.strip()):
        errors.append(FieldError("caller_honorific", "required"))
    else:
        try:
            honorific = Honorific(str(honorific_raw).strip())
        except ValueError:
            errors.append(FieldError("caller_honorific", "honorific_invalid"))

    full_name = _text(data, "caller_full_name", errors, max_length=FULL_NAME_MAX)
    if full_name and surname_ok and surname.casefold() not in full_name.casefold():
        errors.append(FieldError("caller_full_name", "full_name_without_surname",
                                 {"full_name": full_name, "surname": surname}))

    phone = ""
    phone_text = _text(data, "caller_phone", errors, required=True, max_length=PHONE_MAX)
    if phone_text:
        phone, problem = check_phone(phone_text)
        if problem:
            errors.append(FieldError("caller_phone", problem, {"value": phone_text}))
    phone_alt = ""
    alt_text = _text(data, "caller_phone_alt", errors, max_length=PHONE_MAX)
    if alt_text:
        phone_alt, problem = check_phone(alt_text)
        if problem:
            errors.append(FieldError("caller_phone_alt", problem, {"value": alt_text}))
        elif phone and phone_alt == phone:
            errors.append(FieldError("caller_phone_alt", "phone_same_as_main"))

    department = _text(data, "department", errors, required=True, max_length=DEPARTMENT_MAX).upper()

    location = _text(data, "location", errors, max_length=LOCATION_MAX)
    title = _text(data, "title", errors, required=True, max_length=TITLE_MAX)
    description = _text(data, "description", errors, required=True, min_length=DESCRIPTION_MIN,
                        max_length=DESCRIPTION_MAX)

    callback_wanted = _bool(data, "callback_wanted", True, errors)
    sms_consent = _bool(data, "sms_consent", False, errors)
    if sms_consent and (phone or phone_alt) and not (is_mobile(phone) or is_mobile(phone_alt)):
        errors.append(FieldError("sms_consent", "sms_needs_mobile"))
    voice_callback = _bool(data, "voice_callback", False, errors)
    if voice_callback and not callback_wanted:
        errors.append(FieldError("voice_callback", "voice_needs_callback"))

    best_time = _best_time(data, errors)
    not_before = _not_before(data, today, errors)
    operator_notes = _text(data, "operator_notes", errors, max_length=OPERATOR_NOTES_MAX)

    # The privacy guard: the public part must not reach or name the caller.
    public = {"title": title, "location": location, "description": description}
    for name in PUBLIC_FIELDS:
        for finding in find_private_data(public[name], full_name=full_name, surname=surname):
            errors.append(FieldError(name, "privacy_found", {"what": finding.kind, "fragment": finding.fragment}))

    if errors:
        return None, sort_errors(errors)
    assert honorific is not None
    return CaseDraft(
        caller_surname=surname, caller_honorific=honorific, caller_phone=phone, department=department,
        title=title, description=description, channel=channel, call_linkedid=linkedid,
        caller_full_name=full_name, caller_phone_alt=phone_alt, location=location,
        callback_wanted=callback_wanted, sms_consent=sms_consent, voice_callback=voice_callback, best_time=best_time,
        callback_not_before=not_before, operator_notes=operator_notes,
    ), []
