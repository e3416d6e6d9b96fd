import pytest

from callbacks.best_time import BestTime, parse_best_time


@pytest.mark.parametrize("code", ["morning", "afternoon", "evening", "any"])
def test_known_codes_round_trip(code):
    assert parse_best_time(code).value == code


def test_codes_are_the_four_choices():
    assert [b.value for b in BestTime] == ["morning", "afternoon", "evening", "any"]


@pytest.mark.parametrize("stored", [None, "", "  ", "工作日下午", "周三下午三点", "上午", "tonight"])
def test_missing_or_old_free_text_is_any(stored):
    assert parse_best_time(stored) is BestTime.ANY


def test_code_with_space_or_capitals_is_still_the_code():
    assert parse_best_time(" Evening ") is BestTime.EVENING
