"""The fake Twilio's contract: what Twilio's published description refuses, the fake refuses
(so a test passing against the fake is a test against Twilio's documented API)."""
from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import httpx
import pytest

from tests.callbacks.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CALLS,
    MESSAGES,
    Contract,
    ContractViolation,
    FakeTwilio,
)

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode(),
        "Content-Type": "application/x-www-form-urlencoded"}
MESSAGES_PATH = MESSAGES.replace("{AccountSid}", ACCOUNT_SID)
CALLS_PATH = CALLS.replace("{AccountSid}", ACCOUNT_SID)
SMS = {"To": "+8613912345678", "From": "+8657096811", "Body": "case QZ-1"}
CALL = {"To": "+8613912345678", "From": "+8657096811", "Twiml": "<Response><Say>hi</Say></Response>"}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


def form(params) -> bytes:
    return urlencode(params, doseq=True).encode()


def test_the_description_has_what_the_fake_serves(contract):
    assert {"post", "get"} <= set(contract.spec["paths"][MESSAGES]) and "post" in contract.spec["paths"][CALLS]
    contract.check_request("POST", MESSAGES_PATH, AUTH, form(SMS))
    contract.check_request("POST", CALLS_PATH, AUTH, form(CALL | {"StatusCallbackEvent": ["ringing", "completed"],
                                                                  "Timeout": "30", "Record": "true"}))


@pytest.mark.parametrize(("path", "headers", "params", "complaint"), [
    ("/2010-04-01/Accounts/AC123/Messages.json", AUTH, SMS, "path parameter AccountSid"),
    ("/2010-04-01/Accounts/" + ACCOUNT_SID + "/Texts.json", AUTH, SMS, "unknown path"),
    (MESSAGES_PATH, {"Content-Type": AUTH["Content-Type"]}, SMS, "no HTTP basic Authorization"),
    (MESSAGES_PATH, AUTH | {"Content-Type": "application/json"}, SMS, "body is 'application/json'"),
    (MESSAGES_PATH, AUTH, SMS | {"Priority": "high"}, "undocumented form parameter 'Priority'"),
    (MESSAGES_PATH, AUTH, {"From": "+8657096811", "Body": "x"}, "'To' is a required property"),
    (MESSAGES_PATH, AUTH, {"To": "+8613912345678", "Body": "x"}, "one of ['From', 'MessagingServiceSid']"),
    (MESSAGES_PATH, AUTH, {"To": "+8613912345678", "From": "+8657096811"}, "one of ['Body', 'MediaUrl'"),
    (MESSAGES_PATH, AUTH, SMS | {"ValidityPeriod": "soon"}, "ValidityPeriod: 'soon' is not of type 'integer'"),
    (MESSAGES_PATH, AUTH, SMS | {"SmartEncoded": "yes"}, "'yes' is not of type 'boolean'"),
    (MESSAGES_PATH, AUTH, [*SMS.items(), ("Body", "twice")], "'Body' repeated"),
    (CALLS_PATH, AUTH, {"To": "+8613912345678", "From": "+8657096811"}, "one of ['Url', 'Twiml', 'ApplicationSid']"),
    (CALLS_PATH, AUTH, CALL | {"StatusCallbackMethod": "PUT"}, "'PUT' is not one of ['GET', 'POST']"),
])
def test_requests_outside_the_description_are_refused(contract, path, headers, params, complaint):
    with pytest.raises(ContractViolation) as caught:
        contract.check_request("POST", path, headers, form(params))
    assert complaint in str(caught.value)


def message_json(contract, **changes) -> bytes:
    example = contract.spec["paths"][MESSAGES]["post"]["responses"]["201"]["content"]["application/json"]
    return json.dumps(example["examples"]["create"]["value"] | changes).encode()


def test_responses_outside_the_description_are_refused(contract):
    json_headers = {"content-type": "application/json"}
    contract.check_response("POST", MESSAGES_PATH, 201, json_headers, message_json(contract))
    contract.check_response("POST", MESSAGES_PATH, 201, json_headers, message_json(contract, price=None))
    refused = [
        (201, message_json(contract, sid="SM-short"), "sid"),
        (201, message_json(contract, status="lost"), "'lost' is not one of"),
        (201, message_json(contract, error_code="none"), "error_code"),
        (200, message_json(contract), "status not documented"),
        (400, b'{"errors": ["bad"]}', "does not match"),
        (429, json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429}).encode(), None),
    ]
    for status, body, complaint in refused:
        if complaint is None:
            contract.check_response("POST", MESSAGES_PATH, status, json_headers, body)
            continue
        with pytest.raises(ContractViolation) as caught:
            contract.check_response("POST", MESSAGES_PATH, status, json_headers, body)
        assert complaint in str(caught.value)


async def test_the_fake_counts_what_it_does_not_serve_as_a_violation():
    site = FakeTwilio()
    site.start()
    try:
        async with httpx.AsyncClient(base_url=site.base_url) as client:
            response = await client.get(MESSAGES_PATH, headers={"Authorization": AUTH["Authorization"]})
            assert response.status_code == 405
            response = await client.post(MESSAGES_PATH, content=form(SMS | {"Priority": "high"}), headers=AUTH)
            assert response.status_code == 400 and "contract violation" in response.json()["message"]
    finally:
        site.stop()
    assert [v.split(":")[0] for v in site.violations] == ["response", "request"]
