"""What a caller ID's name says about the caller, for the case form's prefill.  Pure.

Caller names arrive as the carrier (or SIPp's injection file) sends them: "张三丰", "朱女士",
"Wang Fang", or junk ("sipp", "unknown", digits).  Only a plausible person's name fills anything:
a Chinese full name gives the full name (private) and its surname (public); "朱女士" gives the
surname and the form of address; a Latin name gives the full name only (which word is the
surname is not known).  The operator checks and edits every value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.db.models import Honorific

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_CHINESE_NAME = re.compile(f"^[{_CJK}]{{2,4}}$")
_ADDRESSED = re.compile(f"^([{_CJK}]{{1,2}})({'|'.join(h.value for h in Honorific)})$")
_LATIN_NAME = re.compile(r"^[A-Za-z][A-Za-z'\-]*(?: [A-Za-z][A-Za-z'\-]*){1,3}$")
# Placeholders carriers, PBXs and test tools put where no name is known.
_NOT_NAMES = {"unknown", "anonymous", "restricted", "private", "unavailable", "sipp", "asterisk", "null",
              "(null)", "<unknown>", "caller", "wireless caller", "未知", "匿名", "未知号码"}
# Two-character surnames common enough to meet on the phone; other names take one character.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 闾丘 端木 南宫 西门 "
    "独孤 澹台 万俟 呼延 申屠 赫连 东郭 百里 太史 公冶".split())


@dataclass(frozen=True)
class CallerName:
    full_name: str = ""
    surname: str = ""
    honorific: str = ""


def caller_name(text: str | None) -> CallerName | None:
    """The name parts a caller ID's name gives, or None when it is no plausible person's name."""
    name = " ".join((text or "").split())
    if not name or name.casefold() in _NOT_NAMES or any(c.isdigit() for c in name):
        return None
    addressed = _ADDRESSED.match(name)
    if addressed:
        honorific = Honorific(addressed.group(2)).value
        return CallerName(surname=addressed.group(1), honorific=honorific)
    if _CHINESE_NAME.match(name):
        surname = name[:2] if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES else name[0]
        return CallerName(full_name=name, surname=surname)
    if _LATIN_NAME.match(name):
        return CallerName(full_name=name)
    return None
