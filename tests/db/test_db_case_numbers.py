"""Case numbers: 96811-YYYY-NNNNNN, consecutive per year, safe under concurrency."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from bridge.db.case_numbers import case_number_in, format_case_number, next_case_number, parse_case_number
from bridge.db.models import CaseNumberCounter


def test_format_and_parse():
    assert format_case_number(2026, 123) == "96811-2026-000123"
    assert format_case_number(2026, 1234567) == "96811-2026-1234567"
    assert parse_case_number("96811-2026-000123") == ("96811", 2026, 123)
    with pytest.raises(ValueError, match="not a case number"):
        parse_case_number("2026-123")


def test_numbers_are_consecutive_per_year(db):
    with db.session() as s:
        assert next_case_number(s, 2026) == "96811-2026-000001"
        assert next_case_number(s, 2026) == "96811-2026-000002"
        assert next_case_number(s, 2027) == "96811-2027-000001"
    with db.session() as s:
        assert next_case_number(s, 2026) == "96811-2026-000003"
        assert next_case_number(s, 2026, prefix="12345") == "12345-2026-000004"
        assert {c.year: c.last for c in s.scalars(select(CaseNumberCounter))} == {2026: 4, 2027: 1}


def test_a_rolled_back_number_is_given_again(db):
    with pytest.raises(RuntimeError):
        with db.session() as s:
            assert next_case_number(s, 2026) == "96811-2026-000001"
            raise RuntimeError("case not saved")
    with db.session() as s:
        assert next_case_number(s, 2026) == "96811-2026-000001"


def test_concurrent_allocations_are_distinct_and_consecutive(db):
    count = 20
    barrier = threading.Barrier(count)
    numbers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def allocate() -> None:
        try:
            barrier.wait(timeout=30)
            with db.session() as s:
                number = next_case_number(s, 2026)
            with lock:
                numbers.append(number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=allocate) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(numbers) == [format_case_number(2026, n) for n in range(1, count + 1)]


def test_a_case_number_is_found_in_a_forum_title_by_the_same_shape_it_is_parsed_by():
    assert case_number_in("【96811-2026-000123】路灯不亮") == "96811-2026-000123"
    assert case_number_in("路灯不亮 (96811-2027-1234567)") == "96811-2027-1234567"
    for text in ("96811-2026-00012", "x96811-2026-000123", "", None):
        assert case_number_in(text) is None
    found = case_number_in("回复：96811-2026-000042 已受理")
    assert parse_case_number(found) == ("96811", 2026, 42)
