"""No Chinese text in the Python code of bridge/cases, bridge/desk, bridge/forum, bridge/web and callbacks: user-facing
texts are message ids whose Chinese lives in the catalogues (bridge/locale).

Comments and docstrings may hold Chinese (examples, explanations); templates are not Python
and go through gettext already.  The few string literals below are not texts shown to a
user in one language: they are values the code accepts or recognises in what people type (or
what units post on the forum), sample data or stored data, the platform's Chinese terms named in
the API's documentation, or (bridge/cases/service.py) the forum post, which is Chinese by design.  Each
is listed by file and by its exact Chinese runs, so any new Chinese string fails this test.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge/cases", "bridge/desk", "bridge/forum", "bridge/web", "bridge/transparency", "callbacks")
# Ideographs, CJK symbols and punctuation, CJK compatibility (㎡), full-width forms.
CJK_RUN = re.compile("[\u3000-\u303f\u3300-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ebef]+")

ALLOWED: dict[str, set[str]] = {
    # Caller ID names recognised as no name at all, and the two-character surnames (input read, not shown).
    "bridge/cases/caller_names.py": {"未知", "匿名", "未知号码", *(
        "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离 闾丘 端木 南宫 西门 "
        "独孤 澹台 万俟 呼延 申屠 赫连 东郭 百里 太史 公冶").split()},
    # Example surnames inside the surname_invalid message (input data, the same in every language).
    "bridge/cases/messages.py": {"朱", "欧阳"},
    # "yes"/"no" as typed in a form (accepted input spellings, not shown).
    "bridge/cases/validation.py": {"是", "否"},
    # Units of measure and money that mark a figure as not a phone number (matched in the text).
    "bridge/cases/privacy.py": {"元", "块", "万", "亿", "米", "千米", "公里", "平", "㎡", "亩", "吨", "斤", "克", "年",
                                "月", "日", "号楼", "人", "户", "次", "个", "辆", "％"},
    # The API's OpenAPI example case (sample data) and the honorific values in a field description.
    "bridge/cases/api.py": {"朱", "女士", "朱小红", "东港三路与百灵路交叉口", "路口垃圾堆积无人清理",
                            "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。",
                            "先生"},
    # The forum post's fixed lines (the public forum is Chinese-only; not a desk or API message).
    "bridge/cases/service.py": {"本帖由", "热线代来电群众发布。", "地点：", "反映人：", "热线编号：", "热线"},
    # The platform's Chinese terms for the statuses, named in the board API's OpenAPI descriptions.
    "bridge/forum/builtin/api.py": {"未受理", "已受理", "受理"},
    # The hotline account's name on the builtin board (stored with each thread: data, not a message).
    "bridge/forum/builtin/board.py": {"热线"},
    # The platform's standard wordings that mark a unit's Discourse post as an acceptance or a forward notice.
    "bridge/forum/discourse/mapping.py": {"已受理", "【已受理】", "转办", "已转", "转交", "【转办】", "【转交】"},
    # The platform's names of two figures, in the units report's OpenAPI descriptions.
    "bridge/transparency/api.py": {"响应率", "满意率"},
    # Full-width separators stripped from a phone number in the text (matched, not shown).
    "bridge/forum/outbox.py": {"（）"},
}


def _doc_strings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings or other bare string statements."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def cjk_in_code(source: str) -> list[tuple[int, str]]:
    """``(line, run)`` for every run of CJK characters written in a string literal that is not a docstring.

    The literal is read as written in the source (a ``\\u4e00`` escape, as in a regex range, is
    not Chinese text); comments are not in the syntax tree; an f-string is read whole."""
    tree = ast.parse(source)
    skip = _doc_strings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
        elif isinstance(node, ast.JoinedStr):
            value = ast.unparse(node)
        else:
            continue
        # Chinese written in the source is Chinese in the value too; only then read the source.
        if id(node) not in skip and CJK_RUN.search(value):
            written = ast.get_source_segment(source, node) or ""
            found.extend((node.lineno, run) for run in CJK_RUN.findall(written))
    return sorted(found)


def _python_files():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_the_scanner_sees_strings_but_not_comments_or_docstrings():
    source = ('"""模块说明。"""\n'
              'def f():\n    """函数说明。"""\n    # 注释\n    x = "请填写"  # 注释\n'
              '    return f"{x}姓名" + N_("Like “朱”") + "\\u4e00"\n')
    assert cjk_in_code(source) == [(5, "请填写"), (6, "姓名"), (6, "朱")]


def test_no_chinese_text_in_python_code():
    files = list(_python_files())
    assert any(p.name == "messages.py" for p in files) and any(p.name == "signin.py" and p.parent.name == "desk" for p in files)
    assert any(p.name == "pages.py" and p.parent.name == "builtin" for p in files)  # the forum board
    problems = []
    for path in files:
        relative = path.relative_to(ROOT).as_posix()
        allowed = ALLOWED.get(relative, set())
        for line, run in cjk_in_code(path.read_text(encoding="utf-8")):
            if run not in allowed:
                problems.append(f"{relative}:{line}: {run}")
    assert not problems, ("Chinese text in code; put it in the catalogues (bridge/locale) and use its English "
                          "message id:\n" + "\n".join(problems))


def test_the_exceptions_are_still_needed():
    """An exception that no longer matches anything is removed, so the list stays short."""
    seen: dict[str, set[str]] = {}
    for path in _python_files():
        relative = path.relative_to(ROOT).as_posix()
        seen[relative] = {run for _line, run in cjk_in_code(path.read_text(encoding="utf-8"))}
    unused = {name: runs - seen.get(name, set()) for name, runs in ALLOWED.items()}
    assert not {name: runs for name, runs in unused.items() if runs}
