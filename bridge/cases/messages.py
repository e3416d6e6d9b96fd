"""The case form's messages: message ids, their parameters, and how they are rendered.

Code never holds a user-facing sentence: a rule names a *message id* and its
parameters (:class:`bridge.cases.validation.FieldError`), and :func:`translate`
renders it in ``zh_CN`` (the default) or ``en``.  The texts live in the gettext
catalogues (``bridge/locale/*/LC_MESSAGES/messages.po``, see :mod:`bridge.i18n`),
like the desk's: the msgid is the English text, marked here for extraction,
with ``%(name)s`` placeholders; the message id (the API's ``code``) stays
stable whatever the wording.  Field labels (``%(label)s``) and the names of
private data (``%(what)s``) are catalogue entries too, with a context, since
the same short English word may be translated differently elsewhere.
"""
from __future__ import annotations

from typing import Any

from bridge.db.models import Honorific
from bridge.i18n import DEFAULT_LOCALE, LOCALES, NC_, N_, pick_locale, translations

# Field labels, used inside messages (%(label)s): field -> (context, msgid).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    "call_linkedid": NC_("case field", "call"),
    "channel": NC_("case field", "channel"),
    "caller_surname": NC_("case field", "surname"),
    "caller_honorific": NC_("case field", "form of address"),
    "caller_full_name": NC_("case field", "full name"),
    "caller_phone": NC_("case field", "phone number"),
    "caller_phone_alt": NC_("case field", "second phone number"),
    "department": NC_("case field", "unit"),
    "location": NC_("case field", "location"),
    "title": NC_("case field", "title"),
    "description": NC_("case field", "description"),
    "callback_wanted": NC_("case field", "callback wanted"),
    "sms_consent": NC_("case field", "SMS consent"),
    "voice_callback": NC_("case field", "automated voice callback"),
    "best_time": NC_("case field", "best time to call back"),
    "callback_not_before": NC_("case field", "first day to call back"),
    "operator_notes": NC_("case field", "operator notes"),
    "body": NC_("case field", "request body"),
    "state": NC_("case field", "state"),
    "page": NC_("case field", "page"),
    "per_page": NC_("case field", "per page"),
    "q": NC_("case field", "search"),
    "mine": NC_("case field", "mine"),
    "overdue": NC_("case field", "overdue"),
    "today": NC_("case field", "today"),
    "retired": NC_("case field", "retired"),
}

# Privacy findings (bridge.cases.privacy.Finding.kind), named inside messages (%(what)s).
FINDING_NAMES: dict[str, tuple[str, str]] = {
    "phone": NC_("private data", "a phone number"),
    "id_card": NC_("private data", "an ID card number"),
    "full_name": NC_("private data", "the caller's full name"),
}

# Message id -> msgid (the English text).
MESSAGES: dict[str, str] = {
    "required": N_("Please fill in the %(label)s."),
    "too_long": N_("The %(label)s must be at most %(max)s characters (it has %(length)s)."),
    "too_short": N_("The %(label)s must be at least %(min)s characters (it has %(length)s)."),
    "not_text": N_("The %(label)s must be text."),
    "not_bool": N_("The %(label)s must be true or false."),
    "not_integer": N_("The %(label)s must be a whole number."),
    "too_small": N_("The %(label)s must be at least %(min)s."),
    "too_large": N_("The %(label)s must be at most %(max)s."),
    "unknown_field": N_("There is no field \u201c%(field)s\u201d; check its spelling."),
    "invalid_json": N_("The request body is not valid JSON."),
    "invalid_value": N_("The %(label)s is not valid."),
    "surname_invalid": N_("The surname must be 1 or 2 Chinese characters (like \u201c%(example_one)s\u201d or "
                          "\u201c%(example_two)s\u201d) or a surname in Latin letters."),
    "honorific_invalid": N_("The form of address must be \u201c%(ms)s\u201d (Ms.) or \u201c%(mr)s\u201d (Mr.)."),
    "full_name_without_surname": N_("The full name \u201c%(full_name)s\u201d does not contain the surname "
                                    "\u201c%(surname)s\u201d; please check."),
    "phone_invalid": N_("\u201c%(value)s\u201d is not a valid Chinese phone number: a mobile number has 11 digits "
                        "starting with 1, a fixed line needs its area code (like 0570-1234567)."),
    "phone_not_chinese": N_("\u201c%(value)s\u201d is not a Chinese number; only +86 numbers can be recorded."),
    "phone_same_as_main": N_("The second phone number is the same as the first; leave it empty."),
    "sms_needs_mobile": N_("SMS consent needs a mobile number in the phone number or the second phone number."),
    "voice_needs_callback": N_("An automated voice callback is a callback: tick \"Callback wanted\" too, or untick it."),
    "channel_invalid": N_("The channel must be phone, walk_in, message or email."),
    "call_needs_phone_channel": N_("Only a phone case can be linked to a call: set the channel to phone "
                                   "or remove the call."),
    "call_taken": N_("%(name)s took this call from the list to call back: only they or a supervisor can file "
                     "a case from it."),
    "call_unknown": N_("There is no call \u201c%(value)s\u201d; open the form again from the call log."),
    "department_unknown": N_("There is no unit with the code \u201c%(value)s\u201d; choose one from the list "
                             "of units."),
    "department_retired": N_("The unit \u201c%(name)s\u201d (%(value)s) is retired; choose the unit now "
                             "responsible."),
    "department_not_chosen": N_("Choose the responsible unit: type its name, its pinyin initials or an everyday "
                                "name, then click the unit in the list or press Enter."),
    "department_only_typed": N_("\u201c%(query)s\u201d is only typed in the search box: click the unit in the list "
                                "or press Enter to choose it."),
    "department_not_shown": N_("The chosen unit is \u201c%(name)s\u201d, but the search box says "
                               "\u201c%(query)s\u201d, which does not find it: choose the unit again, or empty "
                               "the search box."),
    "privacy_found": N_("The %(label)s contains %(what)s \u201c%(fragment)s\u201d: remove it, this text is "
                        "published on the forum."),
    "state_invalid": N_("The state must be one of: %(choices)s."),
    "best_time_invalid": N_("The %(label)s must be one of: %(choices)s."),
    "date_invalid": N_("The %(label)s \u201c%(value)s\u201d is not a date; write it as YYYY-MM-DD."),
    "date_in_past": N_("The %(label)s %(value)s has passed; choose today or a later day."),
    "date_too_far": N_("The %(label)s can be at most %(max)s days ahead (it is %(value)s)."),
}

# Example surnames shown in surname_invalid: input data, the same in every language.
SURNAME_EXAMPLES = ("朱", "欧阳")

# Parameters some messages always have (values the rules accept, not text to translate).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "surname_invalid": {"example_one": SURNAME_EXAMPLES[0], "example_two": SURNAME_EXAMPLES[1]},
    "honorific_invalid": {"ms": Honorific.MS.value, "mr": Honorific.MR.value},
}


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else DEFAULT_LOCALE


def label(field: str, locale: str = DEFAULT_LOCALE) -> str:
    """The label of a form field in ``locale`` (the field's name when it has none)."""
    entry = FIELD_LABELS.get(field)
    return translations(_locale(locale)).pgettext(*entry) if entry else field


def finding_name(kind: str, locale: str = DEFAULT_LOCALE) -> str:
    """How a message names a kind of private data (phone, id_card, full_name) in ``locale``."""
    entry = FINDING_NAMES.get(kind)
    return translations(_locale(locale)).pgettext(*entry) if entry else kind


def translate(message_id: str, locale: str = DEFAULT_LOCALE, **params: Any) -> str:
    """Render ``message_id`` in ``locale`` (zh_CN when unknown); ``%(label)s`` comes from ``field``."""
    locale = _locale(locale)
    msgid = MESSAGES.get(message_id)
    if msgid is None:
        return message_id
    template = translations(locale).gettext(msgid)
    values = {**DEFAULT_PARAMS.get(message_id, {}), **params}
    if "field" in values and "label" not in values:
        values["label"] = label(values["field"], locale)
    if "what" in values:
        values["what"] = finding_name(values["what"], locale)
    try:
        return template % values
    except (KeyError, ValueError, TypeError):  # a catalogue mistake must not hide the error itself
        return template


__all__ = ["DEFAULT_LOCALE", "FIELD_LABELS", "FINDING_NAMES", "LOCALES", "MESSAGES", "finding_name", "label",
           "pick_locale", "translate"]
