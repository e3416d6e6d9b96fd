"""Pinyin initials of a unit's name, for the desk's search box.

``市住房和城乡建设局`` -> ``szfhcxjsj``: an operator types the initials of a unit's
name and finds it.  pypinyin's phrase dictionary picks the right reading of
characters with several (``银行`` -> ``yh``, ``行政`` -> ``xz``).
"""
from __future__ import annotations

from pypinyin import Style, lazy_pinyin

# Department.pinyin_initials is String(64).
MAX_LENGTH = 64


def initials(name: str) -> str:
    """Lower-case pinyin initials of ``name``; Latin letters and digits are kept, the rest dropped."""
    parts = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default")
    text = "".join(parts).lower()
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())[:MAX_LENGTH]
