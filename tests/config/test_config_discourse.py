"""The [forum.discourse] keys added for verification and unit groups."""
from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config, validate

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s" * 32, "HOTLINE_BRIDGE_AMI_SECRET": "ami-secret"}
CATEGORIES = {"CITY-JCY": 11, "CITY-ZJJ": 13}


def discourse(**keys):
    return validate({"forum": {"discourse": keys}}, environ=SECRETS).forum.discourse


def problems_of(**keys) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate({"forum": {"discourse": keys}}, environ=SECRETS)
    return caught.value.problems


def test_defaults():
    dc = discourse()
    assert dc.groups == {}
    assert dc.verify_per_cycle == 3
    assert dc.verify_min_interval_s == 600


def test_the_shipped_file_documents_the_new_keys():
    text = (REPO / "config.toml").read_text(encoding="utf-8")
    for key in ("verify_per_cycle = 3", "verify_min_interval_s = 600", "[forum.discourse.groups]"):
        assert key in text
    dc = load_config(REPO / "config.toml", environ=SECRETS).forum.discourse
    assert (dc.verify_per_cycle, dc.verify_min_interval_s, dc.groups) == (3, 600, {})


def test_groups_name_the_units_groups():
    dc = discourse(categories=CATEGORIES, groups={"CITY-JCY": "jianchayuan"}, verify_per_cycle=0,
                   verify_min_interval_s=3600)
    assert dc.groups == {"CITY-JCY": "jianchayuan"}
    assert dc.verify_per_cycle == 0


def test_a_group_for_a_unit_without_a_category_is_named():
    [problem] = problems_of(categories=CATEGORIES, groups={"CITY-HJ": "huanbao"})
    assert problem.startswith("forum.discourse.groups: ")
    assert "CITY-HJ has a group but no category" in problem
    assert "forum.discourse.categories" in problem and "forum.discourse.groups.CITY-HJ" in problem


def test_two_units_may_not_share_a_group():
    # CITY-ZJJ keeps its default group, city-zjj: CITY-JCY may not take it.
    [problem] = problems_of(categories=CATEGORIES, groups={"CITY-JCY": "City-ZJJ"})
    assert problem.startswith("forum.discourse.groups: ")
    assert "CITY-JCY, CITY-ZJJ share the group 'city-zjj'" in problem


@pytest.mark.parametrize("keys, where, words", [
    ({"categories": {"city-jcy": 11}}, "forum.discourse.categories.city-jcy", "not a unit code"),
    ({"categories": CATEGORIES, "groups": {"jcy": "x"}}, "forum.discourse.groups.jcy", "not a unit code"),
    ({"categories": CATEGORIES, "groups": {"CITY-JCY": "检察院"}}, "forum.discourse.groups.CITY-JCY",
     "not a Discourse group name"),
    ({"groups": {"CITY-JCY": 7}}, "forum.discourse.groups.CITY-JCY", "valid string"),
    ({"verify_per_cycle": -1}, "forum.discourse.verify_per_cycle", "greater than or equal to 0"),
    ({"verify_per_cycle": 21}, "forum.discourse.verify_per_cycle", "less than or equal to 20"),
    ({"verify_per_cycle": 2.5}, "forum.discourse.verify_per_cycle", "valid integer"),
    ({"verify_min_interval_s": 10}, "forum.discourse.verify_min_interval_s", "greater than or equal to 60"),
])
def test_bad_values_are_named(keys, where, words):
    [problem] = problems_of(**keys)
    assert problem.startswith(where), problem
    assert words in problem, problem
