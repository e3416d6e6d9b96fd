"""[callbacks]: calling windows, best-time hours, retry ladders; every bad value named by key."""
from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config, validate

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s" * 32, "HOTLINE_BRIDGE_AMI_SECRET": "ami-secret"}


def callbacks(**section):
    return validate({"callbacks": section}, environ=SECRETS).callbacks


def problems_of(**section) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate({"callbacks": section}, environ=SECRETS)
    return caught.value.problems


def test_shipped_file_is_the_defaults():
    shipped = load_config(REPO / "config.toml", environ=SECRETS).callbacks
    assert shipped == callbacks()
    assert shipped.windows.working_day == ["09:00-12:00", "14:00-20:00"]
    assert shipped.windows.holiday == []
    assert shipped.best_time_hours.evening == "18:00-21:00"
    assert shipped.retry.busy == ["15m", "30m", "1h"]
    assert shipped.retry.no_answer == ["1h", "4h", "next_day"]
    assert shipped.check_number_causes == [1, 22, 28]
    assert (shipped.max_attempts, shipped.owner_timeout_minutes, shipped.dialler) == (5, 30, "asterisk")
    assert shipped.operator_ring_s == 30


def test_windows_per_kind_of_day_are_read():
    config = callbacks(windows={"working_day": ["08:00-21:00"], "weekend": [], "holiday": ["10:00-11:00"]})
    assert config.windows.working_day == ["08:00-21:00"]
    assert config.windows.weekend == []
    assert config.windows.holiday == ["10:00-11:00"]


@pytest.mark.parametrize(
    ("section", "key", "words"),
    [
        ({"windows": {"working_day": ["07:30-12:00"]}}, "callbacks.windows.working_day.0",
         "reaches into the night: callers are phoned only between 08:00 and 21:00 (a fixed bound), e.g. 08:00-12:00"),
        ({"windows": {"weekend": ["20:00-22:00"]}}, "callbacks.windows.weekend.0", "e.g. 20:00-21:00"),
        ({"windows": {"holiday": ["21:00-23:00"]}}, "callbacks.windows.holiday.0", "reaches into the night"),
        ({"windows": {"working_day": ["14:00-18:00", "09:00-12:00"]}}, "callbacks.windows.working_day",
         "in order and must not overlap"),
        ({"windows": {"working_day": ["09:00-12:00", "11:00-13:00"]}}, "callbacks.windows.working_day",
         "in order and must not overlap"),
        ({"windows": {"working_day": ["12:00-09:00"]}}, "callbacks.windows.working_day.0", "ends before it starts"),
        ({"windows": {"working_day": []}}, "callbacks.windows.working_day", "at least 1"),
        ({"windows": {"weekday": ["09:00-12:00"]}}, "callbacks.windows.weekday", "unknown key"),
        ({"windows": ["09:00-12:00"]}, "callbacks.windows", "one list per kind of day: [callbacks.windows]"),
        ({"best_time_hours": {"evening": "18:00-22:00"}}, "callbacks.best_time_hours.evening",
         "reaches into the night"),
        ({"best_time_hours": {"any": "08:00-21:00"}}, "callbacks.best_time_hours", "'any' has no hours"),
        ({"best_time_hours": {"night": "22:00-23:00"}}, "callbacks.best_time_hours.night", "unknown key"),
        ({"windows": {"working_day": ["09:00-12:00"]}}, "callbacks.best_time_hours",
         "afternoon (12:00-18:00) meets no working-day window (09:00-12:00): callers who chose it would "
         "never be phoned; evening (18:00-21:00) meets no working-day window"),
        ({"retry": {"busy": ["30m", "15m"]}}, "callbacks.retry.busy", "must not get shorter"),
        ({"retry": {"no_answer": ["next_day", "4h"]}}, "callbacks.retry.no_answer", "next_day counts as 1d"),
        ({"retry": {"busy": ["15 minutes"]}}, "callbacks.retry.busy.0", "like 15m, 4h, 1d, or next_day"),
        ({"retry": {"busy": ["0m"]}}, "callbacks.retry.busy.0", "is not a wait"),
        ({"retry": {"failed": ["8d"]}}, "callbacks.retry.failed.0", "longer than a week"),
        ({"retry": {"busy": []}}, "callbacks.retry.busy", "at least 1"),
        ({"retry": {"ringing": ["1h"]}}, "callbacks.retry",
         "unknown attempt result 'ringing'; a ladder exists for busy, no_answer, failed, voicemail"),
        ({"retry": {"operator_no_answer": ["1m"]}}, "callbacks.retry", "operator_no_answer is not an attempt"),
        ({"max_attempts": 21}, "callbacks.max_attempts", "less than or equal to 20"),
        ({"check_number_causes": [1, 1]}, "callbacks.check_number_causes", "listed twice"),
        ({"check_number_causes": [0]}, "callbacks.check_number_causes.0", "greater than or equal to 1"),
        ({"owner_timeout_minutes": 0}, "callbacks.owner_timeout_minutes", "greater than or equal to 1"),
        ({"operator_ring_s": 3}, "callbacks.operator_ring_s", "greater than or equal to 5"),
        ({"retry_backoff_minutes": [15]}, "callbacks.retry_backoff_minutes", "unknown key"),
    ],
)
def test_bad_values_are_named(section, key, words):
    (problem,) = problems_of(**section)
    assert problem.startswith(f"{key}: "), problem
    assert words in problem, problem


def test_ladder_steps_of_equal_wait_are_sorted():
    assert callbacks(retry={"no_answer": ["1d", "next_day", "2d"]}).retry.no_answer == ["1d", "next_day", "2d"]


def test_every_problem_of_the_section_at_once():
    found = problems_of(windows={"weekend": ["06:00-07:00"]}, retry={"busy": ["1h", "1m"]}, max_attempts=0)
    assert sorted(p.split(":")[0] for p in found) == [
        "callbacks.max_attempts", "callbacks.retry.busy", "callbacks.windows.weekend.0"]
    assert "e.g." not in next(p for p in found if "weekend" in p)  # no suggestion that is no period
