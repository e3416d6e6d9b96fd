"""The contract check itself: it must catch a fake that drifts from Discourse's published API."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.forum.discourse_server import HOTLINE, Contract, ContractViolation

HEADERS = {"Api-Key": "k", "Api-Username": HOTLINE}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


def created_post(site) -> dict:
    post = site.create_topic(HOTLINE, "住房问题咨询 [96811-2026-000001]", "朱女士来电", 11,
                             "96811-2026-000001")
    return site.created_post_json(post)


def test_a_good_response_passes(contract, discourse_site):
    body = json.dumps(created_post(discourse_site)).encode()
    contract.check_response("POST", "/posts.json", 200, {}, body)


def test_a_response_missing_a_required_field_is_caught(contract, discourse_site):
    data = created_post(discourse_site)
    del data["topic_id"]
    with pytest.raises(ContractViolation, match="topic_id"):
        contract.check_response("POST", "/posts.json", 200, {}, json.dumps(data).encode())


def test_a_response_with_a_wrong_type_or_an_extra_field_is_caught(contract, discourse_site):
    data = created_post(discourse_site)
    data["topic_id"] = str(data["topic_id"])
    with pytest.raises(ContractViolation, match="topic_id"):
        contract.check_response("POST", "/posts.json", 200, {}, json.dumps(data).encode())
    data = created_post(discourse_site)
    data["case_number"] = "96811-2026-000001"  # additionalProperties: false in the description
    with pytest.raises(ContractViolation, match="case_number"):
        contract.check_response("POST", "/posts.json", 200, {}, json.dumps(data).encode())


def test_unknown_path_and_method_are_caught(contract):
    with pytest.raises(ContractViolation, match="unknown path"):
        contract.check_request("GET", "/t/by-case/96811-2026-000001.json", [], HEADERS, b"")
    with pytest.raises(ContractViolation, match="no PATCH operation"):
        contract.check_request("PATCH", "/posts.json", [], HEADERS, b"")
    with pytest.raises(ContractViolation, match="unknown path"):
        contract.check_response("GET", "/nope.json", 200, {}, b"{}")


def test_request_parameters_and_bodies_are_checked(contract):
    contract.check_request("GET", "/posts.json", [("before", "100")], HEADERS, b"")
    with pytest.raises(ContractViolation, match="undocumented query parameter"):
        contract.check_request("GET", "/posts.json", [("after", "100")], HEADERS, b"")
    with pytest.raises(ContractViolation, match="is not"):
        contract.check_request("GET", "/posts.json", [("before", "latest")], HEADERS, b"")
    with pytest.raises(ContractViolation, match="missing required header Api-Key"):
        contract.check_request("GET", "/t/5.json", [], {"Api-Username": HOTLINE}, b"")
    good = json.dumps({"title": "t", "raw": "r", "category": 11, "external_id": "x"}).encode()
    contract.check_request("POST", "/posts.json", [], HEADERS, good, "application/json")
    for bad in ({"title": "t"}, {"raw": "r", "category": "11"}, {"raw": "r", "case": "x"}):
        with pytest.raises(ContractViolation, match="request body"):
            contract.check_request("POST", "/posts.json", [], HEADERS, json.dumps(bad).encode(),
                                   "application/json")
    with pytest.raises(ContractViolation, match="takes none"):
        contract.check_request("GET", "/latest.json", [], HEADERS, b"{}", "application/json")


def test_statuses_redirects_and_error_bodies_are_checked(contract):
    contract.check_response("GET", "/t/external_id/x.json", 301, {"Location": "/t/1.json"}, b"")
    with pytest.raises(ContractViolation, match="without Location"):
        contract.check_response("GET", "/t/external_id/x.json", 301, {}, b"")
    with pytest.raises(ContractViolation, match="not documented"):
        contract.check_response("GET", "/t/1.json", 204, {}, b"")
    error = json.dumps({"errors": ["External ID has already been used"],
                        "error_type": "invalid_parameters"}).encode()
    contract.check_response("POST", "/posts.json", 422, {}, error)
    with pytest.raises(ContractViolation, match="does not match"):
        contract.check_response("POST", "/posts.json", 422, {}, b'{"error": "duplicate"}')


async def test_the_fake_server_reports_a_drifted_response(discourse_site):
    """Break one of the fake's response builders: the middleware catches it."""
    good = discourse_site.created_post_json
    discourse_site.created_post_json = lambda post: {**good(post), "topic_id": "not-an-int"}
    async with httpx.AsyncClient(base_url=discourse_site.base_url,
                                 headers={"Api-Key": discourse_site.api_key,
                                          "Api-Username": HOTLINE}) as client:
        await client.post("/posts.json", json={"title": "住房问题咨询", "raw": "朱女士来电",
                                               "category": 11})
        await client.get("/t/by-case/x.json")  # not Discourse's API
    assert len(discourse_site.violations) == 2
    assert "topic_id" in discourse_site.violations[0]
    assert "unknown path" in discourse_site.violations[1]
    discourse_site.violations.clear()  # seen; the fixture would otherwise fail the test
