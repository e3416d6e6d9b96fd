"""The catalogues (bridge/locale) are the one home of the user-facing texts.

Every message the code marks (the desk's pages and code, the case rules' messages, field
labels and names of private data, the builtin forum board's pages and messages), extracted with the project's own extraction config
(bridge/desk/babel.cfg), has a Chinese translation in zh_CN and an entry in en; the two
catalogues hold the same ids; placeholders agree; nothing is fuzzy or left over.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bridge.cases.messages import FIELD_LABELS, FINDING_NAMES, MESSAGES, finding_name, label, translate
from bridge.cases.validation import FIELDS
from bridge.forum.builtin import board
from bridge.forum.builtin.pages import REPLY_KINDS
from bridge.i18n import LOCALES, catalogue_path, translations

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "bridge" / "desk" / "babel.cfg"
CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff]")


def _catalogue(locale: str):
    with catalogue_path(locale).open("rb") as handle:
        return read_po(handle, locale=locale)


def _key(msgid, context):
    return (context, msgid if isinstance(msgid, str) else msgid[0])


@lru_cache(maxsize=None)
def _extracted() -> frozenset[tuple[str | None, str]]:
    with BABEL_CFG.open() as handle:
        method_map, options_map = parse_mapping_cfg(handle, str(BABEL_CFG))
    return frozenset(_key(msgid, context) for _file, _line, msgid, _comments, context
                     in extract_from_dir(str(ROOT), method_map, options_map))


def _entries(locale: str) -> dict[tuple[str | None, str], object]:
    return {_key(m.id, m.context): m for m in _catalogue(locale) if m.id}


def _code_ids() -> set[tuple[str | None, str]]:
    return ({(None, msgid) for msgid in MESSAGES.values()} | set(FIELD_LABELS.values())
            | set(FINDING_NAMES.values()) | _board_ids())


def _board_ids() -> set[tuple[str | None, str]]:
    return ({(None, msgid) for msgid in board.MESSAGES.values()} | set(board.LABELS.values())
            | set(board.STATUS_LABEL.values()) | {(None, msgid) for msgid in REPLY_KINDS.values()})


def test_extraction_covers_the_desk_and_the_case_rules():
    extracted = _extracted()
    assert _code_ids() <= extracted, sorted(_code_ids() - extracted)
    assert (None, "Sign in") in extracted  # a desk template
    assert (None, "Queued") in extracted  # desk code
    assert _board_ids() <= extracted, sorted(_board_ids() - extracted)
    assert (None, "Spokesperson sign-in") in extracted and (None, "Public board") in extracted  # board templates


@pytest.mark.parametrize("locale", LOCALES)
def test_every_extracted_message_is_in_the_catalogue(locale):
    entries = _entries(locale)
    missing = _extracted() - set(entries)
    assert not missing, f"{locale} lacks {sorted(missing)}: refresh the catalogues (see bridge/i18n.py)"


def test_both_catalogues_hold_the_same_ids_and_nothing_stale():
    zh, en = _entries("zh_CN"), _entries("en")
    assert set(zh) == set(en)
    assert set(zh) == _extracted(), f"not in the code any more: {sorted(set(zh) - _extracted())}"
    for locale in LOCALES:
        catalogue = _catalogue(locale)
        assert not catalogue.obsolete, f"{locale}: obsolete entries {list(catalogue.obsolete)}"
        assert not [m.id for m in catalogue if m.id and m.fuzzy], f"{locale}: fuzzy entries"


def test_every_message_has_its_chinese_translation():
    untranslated = [key for key, m in _entries("zh_CN").items()
                    if not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    assert not untranslated, f"untranslated in zh_CN: {untranslated}"
    for key, m in _entries("zh_CN").items():
        text = m.string if isinstance(m.string, str) else m.string[0]
        assert CJK.search(text), f"zh_CN {key} is not Chinese: {text!r}"


def test_english_is_the_message_id():
    """The en catalogue needs no translation: its entries are empty (the English msgid is shown)."""
    for key, m in _entries("en").items():
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        assert not any(strings), f"en {key} is translated to {m.string!r}"


@pytest.mark.parametrize("locale", LOCALES)
def test_placeholders_agree(locale):
    """Babel's checkers: a translation uses the placeholders of its message id, nothing else."""
    problems = [(m.id, [str(e) for e in errors]) for m, errors in _catalogue(locale).check()]
    assert not problems, problems


def test_every_case_message_id_renders_in_both_locales():
    params = {"field": "title", "max": 60, "length": 61, "min": 10, "value": "0570-1234567",
              "full_name": "Zhu Xiaohong", "surname": "Zhu", "name": "City", "choices": "queued, posted",
              "what": "phone", "fragment": "139 1234 5678", "query": "cg"}
    for message_id in MESSAGES:
        chinese, english = translate(message_id, "zh_CN", **params), translate(message_id, "en", **params)
        for text in (chinese, english):
            assert "%(" not in text and "{" not in text, (message_id, text)
        assert CJK.search(chinese), (message_id, chinese)
        assert english == MESSAGES[message_id] % {**params, "label": "title", "what": "a phone number",
                                                   "example_one": "朱", "example_two": "欧阳",
                                                   "ms": "女士", "mr": "先生"}
    assert translate("required", "fr", field="title") == translate("required", "zh_CN", field="title") == "请填写标题。"
    assert translate("no_such_message") == "no_such_message"


def test_labels_and_private_data_names():
    assert set(FIELD_LABELS) >= set(FIELDS)
    for field in FIELD_LABELS:
        assert CJK.search(label(field)), field
        assert label(field, "en") == FIELD_LABELS[field][1]
    for kind in FINDING_NAMES:
        assert CJK.search(finding_name(kind)), kind
    # The same English word, translated differently in another context: the contexts keep them apart.
    assert translations("zh_CN").gettext("overdue") == "超期"
    assert label("overdue") == "只看超期"
    assert label("unknown_field_name") == "unknown_field_name"


def test_board_messages_render_in_both_locales():
    """The board's messages, labels and statuses come from the catalogues, placeholders filled."""
    params = {"id": 7, "unit": "City", "mine": "Court", "min": 2, "max": 2000, "value": "CITY-ZJJ"}
    for code in board.MESSAGES:
        error = board.BoardError(422, code, "note", params)
        chinese, english = error.message("zh_CN"), error.message("en")
        assert "%(" not in chinese and "%(" not in english, (code, chinese, english)
        assert CJK.search(chinese), (code, chinese)
        assert english == board.MESSAGES[code] % {**params, "label": "note to the poster"}
    assert board.BoardError(422, "required", "note").message("fr") == "请填写给发帖人的转办说明。"
    assert board.BoardError(422, "required", "note").message("en") == "The note to the poster is required."
    assert [board.status_label(s) for s in ("open", "accepted")] == ["未受理", "已受理"]
    assert board.status_label("follow_up", "en") == "accepted (follow-up to answer)"
