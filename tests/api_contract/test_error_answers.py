"""What schemathesis found where the API and its OpenAPI document disagreed, one plain
test each (each failed on the main before this change)."""

from __future__ import annotations

import pytest

PUBLIC_ERRORS = {"400", "401", "403", "413", "422"}


def test_every_operation_documents_the_errors_it_can_answer(api):
    with api.client() as http:
        document = http.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"400", "413", "422"} <= codes, (method, path, codes)
            if path.startswith("/api/"):
                assert codes >= PUBLIC_ERRORS, (method, path, codes)
            if "{" in path:
                assert "404" in codes, (method, path, codes)
            # A 422's detail is a message or a list naming fields: the schema takes both.
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert "type" not in schema["properties"]["detail"], (method, path)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/devices", "GET, POST"),
        ("/api/v1/alert-rules", "GET, POST"),
        ("/api/v1/alert-rules/preview", "POST"),
        ("/api/v1/alert-rules/some-rule", "DELETE, GET, PATCH"),
        ("/api/v1/auth/token", "DELETE, POST"),
    ],
)
def test_a_405_lists_every_method_of_the_path(api, path, allowed):
    with api.client() as http:
        answer = http.put(path, json={})
    assert answer.status_code == 405
    assert answer.headers["Allow"] == allowed


@pytest.mark.parametrize("rule_id", ["\x13\U000f37ab\xad", "a/b", "%00"])
def test_a_rule_id_of_any_text_is_a_404_not_a_500(api, rule_id):
    from urllib.parse import quote

    with api.client() as http:
        read = http.get(f"/api/v1/alert-rules/{quote(rule_id, safe='')}")
        sent = http.post(f"/api/v1/alert-rules/{quote(rule_id, safe='')}/test")
    assert (read.status_code, sent.status_code) == (404, 404), (read.text, sent.text)


def test_a_rule_sent_as_plain_text_is_read_as_json_not_a_500(api):
    with api.client() as http:
        answer = http.post(
            "/api/v1/alert-rules", content=b"null", headers={"Content-Type": "text/plain"}
        )
        garbage = http.post(
            "/api/v1/alert-rules", content=b"\xff{", headers={"Content-Type": "text/plain"}
        )
    assert answer.status_code == 422, answer.text
    assert garbage.status_code == 422, garbage.text


def test_a_device_whose_mqtt_account_is_gone_is_a_409_not_an_endless_503(api):
    with api.client() as http:
        device = http.post("/api/v1/devices", json={"name": "orphan", "metadata": {}}).json()
        with api.internal() as internal:
            gone = internal.delete(f"/internal/mqtt-accounts/{device['id']}")
            assert gone.status_code in (200, 204), gone.text
        renamed = http.patch(f"/api/v1/devices/{device['id']}", json={"name": "still here"})
        rotated = http.post(f"/api/v1/devices/{device['id']}/credentials/rotate")
    for answer in (renamed, rotated):
        assert answer.status_code == 409, answer.text
        assert "register it again" in answer.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"device_id": 0, "owner_id": "1", "name": "x"},
        {"device_id": "dev-x", "owner_id": "1", "name": 0},
        {"device_id": "dev-x", "owner_id": True, "name": "x"},
        {"device_id": "\U00049729", "owner_id": "1", "name": "x"},
    ],
)
def test_an_mqtt_account_takes_text_where_the_schema_says_text(api, body):
    with api.internal() as internal:
        answer = internal.post("/internal/mqtt-accounts", json=body)
    assert answer.status_code == 422, answer.text
    assert isinstance(answer.json()["detail"], list)
