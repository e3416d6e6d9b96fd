"""The privacy guard (pure): phone numbers, ID card numbers and the full name in public text."""
from __future__ import annotations

import pytest

from bridge.cases.privacy import check_public_part, find_private_data, fold


def kinds(text: str, **kw) -> list[tuple[str, str]]:
    return [(f.kind, f.fragment) for f in find_private_data(text, **kw)]


@pytest.mark.parametrize("text, fragment", [
    ("请拨13912345678联系", "13912345678"),
    ("电话 139 1234 5678。", "139 1234 5678"),
    ("139-1234-5678", "139-1234-5678"),
    ("1391-234-5678", "1391-234-5678"),
    ("手机+86 139 1234 5678", "+86 139 1234 5678"),
    ("手机+8613912345678", "+8613912345678"),
    ("008613912345678", "008613912345678"),
    ("8613912345678", "8613912345678"),
    ("手机１３９１２３４５６７８", "１３９１２３４５６７８"),
    ("手机１３９－１２３４－５６７８", "１３９－１２３４－５６７８"),
    ("手机１３９　１２３４　５６７８", "１３９　１２３４　５６７８"),
    ("号码是19912345678的那位", "19912345678"),
    ("call me at 15012345678 please", "15012345678"),
])
def test_mobile_numbers_are_found(text, fragment):
    assert kinds(text) == [("phone", fragment)]


@pytest.mark.parametrize("text, fragment", [
    ("固话0570-1234567", "0570-1234567"),
    ("固话05701234567", "05701234567"),
    ("0570 123 4567", "0570 123 4567"),
    ("(0570)12345678", "(0570)12345678"),
    ("（０５７０）１２３４５６７", "（０５７０）１２３４５６７"),
    ("０５７０－１２３４５６７", "０５７０－１２３４５６７"),
    ("+86 570 1234567", "+86 570 1234567"),
    ("北京010-12345678", "010-12345678"),
    ("上海021 8765 4321", "021 8765 4321"),
    ("0570-1234567转8", "0570-1234567"),
])
def test_fixed_lines_with_area_code_are_found(text, fragment):
    assert kinds(text) == [("phone", fragment)]


@pytest.mark.parametrize("text, fragment", [
    ("电话1234567", "1234567"),
    ("家里电话 8765 4321", "8765 4321"),
    ("打 8765-4321 找我", "8765-4321"),
    ("打３０１２３４５找我", "３０１２３４５"),
])
def test_fixed_lines_without_area_code_are_found(text, fragment):
    assert kinds(text) == [("phone", fragment)]


@pytest.mark.parametrize("text, fragment", [
    ("身份证330802198001011234", "330802198001011234"),
    ("33080219800101123X", "33080219800101123X"),
    ("33080219800101123x号", "33080219800101123x"),
    ("330802 19800101 1234", "330802 19800101 1234"),
    ("330802-1980-0101-123X", "330802-1980-0101-123X"),
    ("３３０８０２１９８００１０１１２３Ｘ", "３３０８０２１９８００１０１１２３Ｘ"),
    ("老身份证330802800101123", "330802800101123"),
])
def test_id_card_numbers_are_found(text, fragment):
    assert kinds(text) == [("id_card", fragment)]


@pytest.mark.parametrize("text", [
    "2026年11月25日中午12点",
    "2026-11-25上午",
    "20261125",
    "2025-2026年",
    "2025-2026",
    "3号楼2单元502室",
    "已经拖欠工资12345678元",
    "占地2000000平方米",
    "每天约3000000人次经过",
    "版本1.2345678",
    "拨打96811热线",
    "12345",
    "路口离学校500米，三个路口没有红绿灯",
    "早上4点到5点公鸡打鸣",
    "G60高速",
    "车牌浙H12345",
])
def test_ordinary_figures_are_not_reported(text):
    assert kinds(text) == []


def test_full_name_is_found_when_longer_than_the_surname():
    assert kinds("朱小红反映路口垃圾", full_name="朱小红", surname="朱") == [("full_name", "朱小红")]
    assert kinds("朱 小 红反映", full_name="朱小红", surname="朱") == [("full_name", "朱 小 红")]
    assert kinds("Reported by john smith", full_name="John Smith", surname="Smith") == [("full_name", "john smith")]
    assert kinds("Reported by JohnSmith", full_name="John Smith", surname="Smith") == [("full_name", "JohnSmith")]


def test_surname_alone_is_allowed():
    assert kinds("朱女士反映", full_name="朱", surname="朱") == []
    assert kinds("朱女士反映", full_name="朱小红", surname="朱") == []
    assert kinds("欧阳先生反映", full_name="欧阳", surname="欧阳") == []


def test_several_findings_in_text_order_each_once():
    found = kinds("朱小红，手机13912345678，身份证330802198001011234，家里0570-1234567",
                  full_name="朱小红", surname="朱")
    assert found == [("full_name", "朱小红"), ("phone", "13912345678"),
                     ("id_card", "330802198001011234"), ("phone", "0570-1234567")]


def test_an_id_card_is_not_also_reported_as_a_phone_number():
    assert kinds("身份证 330802 19800101 1234") == [("id_card", "330802 19800101 1234")]


def test_fold_keeps_positions():
    text = "手机１３９－１２３４　５６７８"
    assert len(fold(text)) == len(text)
    assert fold(text) == "手机139-1234 5678"


def test_check_public_part_names_each_field():
    result = check_public_part({"title": "朱小红的问题", "location": "东港三路", "description": "请回电13912345678"},
                               full_name="朱小红", surname="朱")
    assert set(result) == {"title", "description"}
    assert result["description"][0].fragment == "13912345678"
