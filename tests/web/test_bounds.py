"""Paging and numeric parameters are bounded: out-of-range values answer 422 (or are clamped on
HTML pages), never a server error (defect 7: schemathesis found ``page=1339...`` answering 500)."""
from __future__ import annotations

import pytest

from tests.web.conftest import bearer

HUGE = "13398324996725596391647215616"


@pytest.mark.parametrize("path", [
    f"/api/v1/board/posts?page={HUGE}",
    f"/api/v1/board/posts?per_page={HUGE}",
    f"/api/v1/cases?page={HUGE}",
    f"/api/v1/calls?page={HUGE}",
    f"/api/v1/board/posts/{HUGE}",
    f"/api/v1/board/posts?page={2**62}",
    f"/api/v1/cases?page={2**62}",
    f"/api/v1/calls?page={2**62}",
])
def test_huge_numbers_in_the_api_are_refused_with_422(client, tokens, path):
    response = client.get(path, headers=bearer(tokens["admin"]))
    assert response.status_code == 422, response.text


def test_huge_post_id_in_an_action_is_422(client, tokens):
    response = client.post(f"/api/v1/board/posts/{HUGE}/accept", headers=bearer(tokens["spokesperson"]))
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("path", [f"/board/?page={HUGE}", f"/board/?page={2**62}", f"/board/threads/{HUGE}",
                                  f"/board/threads/{2**40}"])
def test_huge_numbers_on_the_public_board_are_no_server_error(client, tokens, path):
    assert client.get(path).status_code in (200, 404, 422)


def test_the_board_api_last_page_is_an_empty_page(client, tokens):
    response = client.get("/api/v1/board/posts?page=10000", headers=bearer(tokens["admin"]))
    assert response.status_code == 200 and response.json()["posts"] == []
