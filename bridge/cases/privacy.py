"""The privacy guard (pure): the public part of a case must not name or reach the caller.

The public part (title, location, description) is posted on the forum for anyone
to read.  :func:`find_private_data` looks in one text for

- phone numbers: mobiles (11 digits starting 13-19, with or without +86/0086),
  fixed lines with an area code (``0570-1234567``, ``(0570)1234567``,
  ``+86 570 1234567``) and without one (7 or 8 digits: ``1234567``, ``8765 4321``), written with
  spaces or dashes between the digits, in ASCII or full-width digits;
- ID card numbers: 18 digits (the last may be X) with a plausible birth date,
  and the old 15-digit form, also with separators;
- the caller's full name, when it is longer than the surname alone.

Each finding names the fragment as written, so the operator can find and
remove it.  Heuristics keep ordinary figures out: a local (no area code)
number is not reported when it is a date (``20261125``, ``2025-2026``) or is
followed by a unit of measure or money (``12345678元``, ``2000000平方米``).
Not caught: numbers written in Chinese numerals (一三九…), which are rare in
typed text; the operator's own reading remains the last check.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

PUBLIC_FIELDS = ("title", "location", "description")

# One-to-one character folding (positions stay the same): full-width digits,
# letters X, plus sign, dashes, parentheses and spaces to their ASCII forms.
_FOLD = {**{0xFF10 + i: ord("0") + i for i in range(10)},
         0xFF38: ord("X"), 0xFF58: ord("x"), 0xFF0B: ord("+"),
         0xFF0D: ord("-"), 0x2010: ord("-"), 0x2011: ord("-"), 0x2012: ord("-"), 0x2013: ord("-"),
         0x2014: ord("-"), 0x2015: ord("-"), 0x2212: ord("-"), 0x30FC: ord("-"),
         0xFF08: ord("("), 0xFF09: ord(")"), 0x3000: ord(" "), 0x00A0: ord(" ")}

_SEP = r"[ \-]?"  # at most one space or dash between two digits


def _digits(*classes: str) -> str:
    """A pattern for the digit classes in order, each pair optionally separated."""
    return _SEP.join(classes)


def _repeat(cls: str, n: int) -> list[str]:
    return [cls] * n


_D = r"\d"
_NOT_DIGIT_BEFORE = r"(?<![\dA-Za-z])"
_NOT_DIGIT_AFTER = r"(?![\dXx])"
_COUNTRY = r"(?:(?:\+|00)?86[ \-]?)?"

_ID18 = re.compile(
    _NOT_DIGIT_BEFORE
    + _digits(r"[1-9]", *_repeat(_D, 5), r"(?:1[89]|20)", *_repeat(_D, 2), r"(?:0[1-9]|1[0-2])",
              r"(?:0[1-9]|[12]\d|3[01])", *_repeat(_D, 3), r"[\dXx]")
    + r"(?![\dA-Za-z])")
# The old 15-digit card: 6-digit area, YYMMDD, 3 digits.
_ID15 = re.compile(
    _NOT_DIGIT_BEFORE
    + _digits(r"[1-9]", *_repeat(_D, 5), *_repeat(_D, 2), r"(?:0[1-9]|1[0-2])",
              r"(?:0[1-9]|[12]\d|3[01])", *_repeat(_D, 3))
    + r"(?![\dA-Za-z])")
_MOBILE = re.compile(_NOT_DIGIT_BEFORE + _COUNTRY + _digits(r"1", r"[3-9]", *_repeat(_D, 9)) + _NOT_DIGIT_AFTER)
# Area codes: 010, 02X, 0XXX (or without the 0 after +86), then 7-8 digits; without an area
# code, 7-8 digits not starting with 0.
_AREA = r"(?:0?(?:10|2\d|[3-9]\d\d))"
_LANDLINE = re.compile(
    _NOT_DIGIT_BEFORE
    + r"(?:(?:\+|00)86[ \-]?" + _AREA + r"|\(?0(?:10|2\d|[3-9]\d\d)\)?)"
    + r"[ \-]?"
    + _digits(r"[1-9]", *_repeat(_D, 5)) + r"(?:" + _SEP + r"\d){1,2}"
    + _NOT_DIGIT_AFTER)
_LOCAL = re.compile(
    r"(?<![\dA-Za-z.\-+/])" + _digits(r"[1-9]", *_repeat(_D, 5)) + r"(?:" + _SEP + r"\d){1,2}"
    + r"(?![\dA-Za-z.])")
# What a figure, not a phone number, is followed by.
_UNIT_AFTER = re.compile(r"\s*(?:元|块|万|亿|米|千米|公里|平|㎡|亩|吨|斤|克|年|月|日|号楼|人|户|次|个|辆|%|％|m|km|kg|RMB)",
                         re.IGNORECASE)
_DATE8 = re.compile(r"^(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])$")
_YEAR_RANGE = re.compile(r"^(?:19|20)\d\d-(?:19|20)\d\d$")


@dataclass(frozen=True)
class Finding:
    """Private data found in a public text: ``kind`` is phone, id_card or full_name."""

    kind: str
    fragment: str  # as written in the text
    start: int
    end: int


def fold(text: str) -> str:
    """Full-width digits, dashes and spaces to ASCII, one character for one (positions kept)."""
    return text.translate(_FOLD)


def _is_figure(folded: str, start: int, end: int) -> bool:
    fragment = folded[start:end].strip()
    if _DATE8.match(fragment.replace("-", "").replace(" ", "")):
        return True
    if _YEAR_RANGE.match(fragment):
        return True
    return bool(_UNIT_AFTER.match(folded, end))


def find_private_data(text: str, *, full_name: str = "", surname: str = "") -> list[Finding]:
    """Every phone number, ID card number and the caller's full name in ``text``, in text order."""
    if not text:
        return []
    folded = fold(text)
    work = list(folded)  # found spans are blanked so one number is reported once
    findings: list[Finding] = []

    def scan(pattern: re.Pattern[str], kind: str, local: bool = False) -> None:
        current = "".join(work)
        for match in pattern.finditer(current):
            start, end = match.span()
            if local and _is_figure(folded, start, end):
                continue
            findings.append(Finding(kind, text[start:end], start, end))
            for i in range(start, end):
                work[i] = "#"

    scan(_ID18, "id_card")
    scan(_MOBILE, "phone")
    scan(_LANDLINE, "phone")
    scan(_ID15, "id_card")
    scan(_LOCAL, "phone", local=True)

    name = (full_name or "").strip()
    if name and len(name.replace(" ", "")) > len((surname or "").strip()):
        for candidate in {name, re.sub(r"\s+", "", name)}:
            if not candidate:
                continue
            for match in re.finditer(re.escape(candidate), folded, re.IGNORECASE):
                start, end = match.span()
                if any(f.start < end and start < f.end for f in findings):
                    continue
                findings.append(Finding("full_name", text[start:end], start, end))
        # A CJK name written with spaces between its characters (朱 小 红).
        chars = [c for c in name if not c.isspace()]
        if len(chars) > 1 and all(ord(c) > 0x2E80 for c in chars):
            spaced = re.compile(r"\s*".join(re.escape(c) for c in chars))
            for match in spaced.finditer(folded):
                start, end = match.span()
                if any(f.start < end and start < f.end for f in findings):
                    continue
                findings.append(Finding("full_name", text[start:end], start, end))

    findings.sort(key=lambda f: f.start)
    return findings


def check_public_part(fields: dict[str, str], *, full_name: str = "", surname: str = "") -> dict[str, list[Finding]]:
    """The findings in each public field (title, location, description) that has any."""
    result: dict[str, list[Finding]] = {}
    for field in PUBLIC_FIELDS:
        found = find_private_data(fields.get(field) or "", full_name=full_name, surname=surname)
        if found:
            result[field] = found
    return result
