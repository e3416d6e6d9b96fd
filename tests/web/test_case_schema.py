"""The OpenAPI document of ``POST /api/v1/cases`` states the limits the case rules enforce, so that
requests made from the document are valid but for what only the database or the text's meaning can
tell (an unknown unit or call, a full name without the surname, private data in the public part)."""
from __future__ import annotations

import re
from collections import Counter
from datetime import date

import jsonschema
import schemathesis
from hypothesis import HealthCheck, given, settings

from bridge.cases.validation import DESCRIPTION_MAX, DESCRIPTION_MIN, TITLE_MAX, validate_case
from tests.web.conftest import bearer

# Codes of problems a JSON schema can state (presence, type, length, choice, shape); a body made
# from the document must draw none of them.
SCHEMA_CODES = {"required", "too_long", "too_short", "not_text", "not_bool", "channel_invalid", "honorific_invalid",
                "surname_invalid", "unknown_field", "invalid_json", "invalid_value", "not_integer",
                "best_time_invalid", "date_invalid"}


def case_schema(app) -> dict:
    document = app.openapi()
    body = document["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]


def test_the_document_states_the_case_rules(web_app):
    schema = case_schema(web_app)
    fields = schema["properties"]
    assert set(schema["required"]) == {"caller_surname", "caller_honorific", "caller_phone", "department", "title",
                                       "description"}
    assert schema["additionalProperties"] is False
    assert (fields["title"]["minLength"], fields["title"]["maxLength"]) == (1, TITLE_MAX)
    assert (fields["description"]["minLength"], fields["description"]["maxLength"]) == (DESCRIPTION_MIN,
                                                                                         DESCRIPTION_MAX)
    assert set(fields["caller_honorific"]["enum"]) == {"女士", "先生"}
    assert {"phone", "walk_in", "message", "email"} == set(fields["channel"]["anyOf"][0]["enum"])
    assert ["morning", "afternoon", "evening", "any"] == fields["best_time"]["anyOf"][0]["enum"]
    assert fields["callback_not_before"]["anyOf"][0] == {"type": "string", "format": "date"}
    for number in ("139 1234 5678", "13912345678", "+86 139 1234 5678", "0570-1234567", "010 12345678"):
        assert re.search(fields["caller_phone"]["pattern"], number), number
    for surname in ("朱", "欧阳", "Smith", "O'Neil"):
        assert re.search(fields["caller_surname"]["pattern"], surname), surname
    assert not re.search(fields["caller_surname"]["pattern"], "朱小红")


def test_the_documented_example_is_valid_and_files(web_app, client, tokens):
    schema = case_schema(web_app)
    [example] = schema["examples"]
    jsonschema.validate(example, schema)
    assert validate_case(example, today=date(2026, 12, 3))[1] == []
    assert client.post("/api/v1/cases", json=example, headers=bearer(tokens["operator"])).status_code == 201


def test_bodies_made_from_the_document_break_no_rule_the_document_states(web_app, tokens):
    operation = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web_app)["/api/v1/cases"]["POST"]
    refused: Counter[str] = Counter()

    @given(case=operation.as_strategy())
    @settings(max_examples=40, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def file(case) -> None:
        response = case.call(headers=bearer(tokens["admin"]))
        assert response.status_code in (201, 422), response.text
        if response.status_code == 422:
            refused.update({entry["code"] for entry in response.json()["detail"]})

    file()
    assert not set(refused) & SCHEMA_CODES, refused


def test_the_read_back_states_the_best_time_codes_and_the_day(web_app):
    fields = web_app.openapi()["components"]["schemas"]["CaseOut"]["properties"]
    assert fields["best_time"]["enum"] == ["morning", "afternoon", "evening", "any"]
    assert fields["best_time_text"]["type"] == "string"
    assert {"type": "string", "format": "date"} in fields["callback_not_before"]["anyOf"]
