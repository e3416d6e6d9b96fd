"""The case form's messages: message ids and one catalogue per locale.

Code never holds a user-facing sentence: a rule names a *message id* and its
parameters (:class:`bridge.cases.validation.FieldError`), and :func:`translate`
renders it in ``zh_CN`` (the default) or ``en``.  The catalogues are plain dicts
so that they can move to gettext/Babel ``.po`` files unchanged later: the id is
the msgid, each locale's string the msgstr, ``{name}`` placeholders stay.
"""
from __future__ import annotations

from typing import Any

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")

# Field labels, used inside messages ({label}).
FIELD_LABELS: dict[str, dict[str, str]] = {
    "zh_CN": {
        "call_linkedid": "通话", "channel": "来源渠道", "caller_surname": "姓",
        "caller_honorific": "称呼", "caller_full_name": "姓名", "caller_phone": "联系电话",
        "caller_phone_alt": "备用电话", "department": "责任单位", "location": "地点",
        "title": "标题", "description": "问题描述", "callback_wanted": "是否需要回访",
        "sms_consent": "是否同意短信", "best_time": "方便回电的时间", "operator_notes": "话务员备注",
        "body": "请求内容", "state": "状态", "page": "页码", "per_page": "每页条数",
        "q": "搜索", "mine": "只看我的", "overdue": "只看超期", "today": "只看今天", "retired": "已撤销",
    },
    "en": {
        "call_linkedid": "call", "channel": "channel", "caller_surname": "surname",
        "caller_honorific": "form of address", "caller_full_name": "full name", "caller_phone": "phone number",
        "caller_phone_alt": "second phone number", "department": "unit", "location": "location",
        "title": "title", "description": "description", "callback_wanted": "callback wanted",
        "sms_consent": "SMS consent", "best_time": "best time to call back", "operator_notes": "operator notes",
        "body": "request body", "state": "state", "page": "page", "per_page": "per page",
        "q": "search", "mine": "mine", "overdue": "overdue", "today": "today", "retired": "retired",
    },
}

# Privacy findings, named inside messages ({what}).
FINDING_NAMES: dict[str, dict[str, str]] = {
    "zh_CN": {"phone": "电话号码", "id_card": "身份证号码", "full_name": "来电人的姓名"},
    "en": {"phone": "a phone number", "id_card": "an ID card number", "full_name": "the caller's full name"},
}

CATALOGUES: dict[str, dict[str, str]] = {
    "zh_CN": {
        "required": "请填写{label}。",
        "too_long": "{label}不能超过 {max} 个字（现在 {length} 个字）。",
        "too_short": "{label}至少要 {min} 个字（现在 {length} 个字）。",
        "not_text": "{label}应为文字。",
        "not_bool": "{label}应为“是”或“否”（true 或 false）。",
        "not_integer": "{label}应为整数。",
        "too_small": "{label}不能小于 {min}。",
        "too_large": "{label}不能大于 {max}。",
        "unknown_field": "没有“{field}”这一项，请检查拼写。",
        "invalid_json": "请求内容不是有效的 JSON。",
        "invalid_value": "{label}的值不正确。",
        "surname_invalid": "姓应为 1 到 2 个汉字（如“朱”“欧阳”），或一个拉丁字母拼写的姓。",
        "honorific_invalid": "称呼只能是“女士”或“先生”。",
        "full_name_without_surname": "姓名“{full_name}”里没有所填的姓“{surname}”，请核对。",
        "phone_invalid": "“{value}”不是有效的中国电话号码：手机号为 1 开头的 11 位数字，固定电话要带区号（如 0570-1234567）。",
        "phone_not_chinese": "“{value}”不是中国的电话号码，只能登记 +86 的号码。",
        "phone_same_as_main": "备用电话与联系电话相同，不用重复填写。",
        "sms_needs_mobile": "同意接收短信时，联系电话或备用电话中须有一个手机号码。",
        "channel_invalid": "来源渠道只能是：电话（phone）、来访（walk_in）、留言（message）或邮件（email）。",
        "call_needs_phone_channel": "只有电话渠道的案件才能关联通话，请把来源渠道改为电话，或去掉关联的通话。",
        "call_unknown": "找不到通话“{value}”，请从来电记录中重新打开表单。",
        "department_unknown": "没有代码为“{value}”的单位，请从单位列表中选择。",
        "department_retired": "单位“{name}”（{value}）已撤销，请选择现在负责的单位。",
        "privacy_found": "{label}中含有{what}“{fragment}”，请删除：这部分内容会公开发到论坛上。",
        "state_invalid": "状态只能是：{choices}。",
    },
    "en": {
        "required": "Please fill in the {label}.",
        "too_long": "The {label} must be at most {max} characters (it has {length}).",
        "too_short": "The {label} must be at least {min} characters (it has {length}).",
        "not_text": "The {label} must be text.",
        "not_bool": "The {label} must be true or false.",
        "not_integer": "The {label} must be a whole number.",
        "too_small": "The {label} must be at least {min}.",
        "too_large": "The {label} must be at most {max}.",
        "unknown_field": "There is no field \u201c{field}\u201d; check its spelling.",
        "invalid_json": "The request body is not valid JSON.",
        "invalid_value": "The {label} is not valid.",
        "surname_invalid": "The surname must be 1 or 2 Chinese characters (like \u201c朱\u201d or \u201c欧阳\u201d) "
                           "or a surname in Latin letters.",
        "honorific_invalid": "The form of address must be \u201c女士\u201d (Ms.) or \u201c先生\u201d (Mr.).",
        "full_name_without_surname": "The full name \u201c{full_name}\u201d does not contain the surname "
                                     "\u201c{surname}\u201d; please check.",
        "phone_invalid": "\u201c{value}\u201d is not a valid Chinese phone number: a mobile number has 11 digits "
                         "starting with 1, a fixed line needs its area code (like 0570-1234567).",
        "phone_not_chinese": "\u201c{value}\u201d is not a Chinese number; only +86 numbers can be recorded.",
        "phone_same_as_main": "The second phone number is the same as the first; leave it empty.",
        "sms_needs_mobile": "SMS consent needs a mobile number in the phone number or the second phone number.",
        "channel_invalid": "The channel must be phone, walk_in, message or email.",
        "call_needs_phone_channel": "Only a phone case can be linked to a call: set the channel to phone "
                                    "or remove the call.",
        "call_unknown": "There is no call \u201c{value}\u201d; open the form again from the call log.",
        "department_unknown": "There is no unit with the code \u201c{value}\u201d; choose one from the list of units.",
        "department_retired": "The unit \u201c{name}\u201d ({value}) is retired; choose the unit now responsible.",
        "privacy_found": "The {label} contains {what} \u201c{fragment}\u201d: remove it, this text is published "
                         "on the forum.",
        "state_invalid": "The state must be one of: {choices}.",
    },
}


def pick_locale(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The catalogue for an ``Accept-Language`` header: ``en`` if English comes before Chinese."""
    if accept_language:
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("zh"):
                return "zh_CN"
            if tag.startswith("en"):
                return "en"
    return default if default in CATALOGUES else DEFAULT_LOCALE


def label(field: str, locale: str = DEFAULT_LOCALE) -> str:
    labels = FIELD_LABELS.get(locale, FIELD_LABELS[DEFAULT_LOCALE])
    return labels.get(field, field)


def translate(message_id: str, locale: str = DEFAULT_LOCALE, **params: Any) -> str:
    """Render ``message_id`` in ``locale`` (zh_CN when unknown); ``{label}`` comes from ``field``."""
    catalogue = CATALOGUES.get(locale, CATALOGUES[DEFAULT_LOCALE])
    template = catalogue.get(message_id) or CATALOGUES[DEFAULT_LOCALE].get(message_id, message_id)
    values = dict(params)
    if "field" in values and "label" not in values:
        values["label"] = label(values["field"], locale)
    if "what" in values:
        values["what"] = FINDING_NAMES.get(locale, FINDING_NAMES[DEFAULT_LOCALE]).get(values["what"], values["what"])
    try:
        return template.format(**values)
    except (KeyError, IndexError):  # a catalogue mistake must not hide the error itself
        return template
