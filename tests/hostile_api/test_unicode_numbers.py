"""Issue 13, item 10: numbers and times typed into query parameters and forms. Unicode
digits (`"²".isdigit()` is true and `int("²")` fails; `int("٣")` is 3) and any other
text are a 4xx that names the parameter, never a 5xx, on a real `fieldline up`."""

from __future__ import annotations

import json
import re
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.hostile_api.server import fieldline_up

UNICODE_NUMBERS = ["²", "٣", "١٢٣", "-²", "-٣h", "٣s", "1²", "²h", "-1²m", "𝟙", "¹⁰", "٣ms"]
TEXT = st.one_of(
    st.sampled_from(UNICODE_NUMBERS),
    st.from_regex(r"-?[0-9²٣]{1,25}(ms|s|m|h|d|w)?", fullmatch=True),
    st.from_regex(
        r"20[0-9٣]{2}-[0-9]{2}-[0-9٣]{2}T[0-9]{2}:[0-9]{2}(Z|\+0[0-9]:00)?", fullmatch=True
    ),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fieldline_up(tmp_path_factory.mktemp("unicode") / "data") as running:
        username, password = running.add_user()
        api = running.api(username, password)
        device = api.post("/api/v1/devices", json={"name": "probe"})
        assert device.status_code == 201, device.text
        running.api_client = api
        running.device_id = device.json()["id"]
        running.console_client = running.console(username, password)
        yield running
        api.close()
        running.console_client.close()


def api_request(server, route: str, param: str, value: str):
    device = server.device_id
    if route == "telemetry":
        params = {"fields": "temperature", "start": "-1h", "stop": "now"}
        if param == "every":
            params["agg"] = "mean"
        params[param] = value
        return server.api_client.get(f"/api/v1/devices/{device}/telemetry", params=params)
    if route == "latest":
        return server.api_client.get(f"/api/v1/devices/{device}/latest", params={param: value})
    if route == "alerts":
        return server.api_client.get("/api/v1/alerts", params={param: value})
    if route == "preview":
        body = {"rule": preview_rule(server), "stop": "2026-12-01T00:00:00Z", param: value}
        return server.api_client.post("/api/v1/alert-rules/preview", json=body)
    raise AssertionError(route)


def preview_rule(server) -> dict:
    return {
        "name": "hot",
        "device_id": server.device_id,
        "field": "temperature",
        "condition": "above",
        "warn": 25,
        "crit": 30,
        "recipients": ["ops@example.com"],
    }


@pytest.mark.parametrize(
    ("route", "param"),
    [
        ("telemetry", "start"),
        ("telemetry", "stop"),
        ("telemetry", "every"),
        ("latest", "start"),
        ("alerts", "since"),
        ("alerts", "until"),
        ("preview", "start"),
        ("preview", "stop"),
    ],
)
@given(value=TEXT)
@example(value="²")
@example(value="٣")
def test_a_bad_number_or_time_is_a_4xx_naming_the_parameter(server, route, param, value):
    answer = api_request(server, route, param, value)
    assert answer.status_code < 500, (
        f"{route}?{param}={value!r}: expected 2xx or 4xx, got {answer.status_code} {answer.text}"
    )
    if answer.status_code >= 400:
        assert answer.status_code in (400, 422), (
            f"{route}?{param}={value!r}: expected 400 or 422, got {answer.status_code}"
        )
        detail = json.dumps(answer.json().get("detail"), ensure_ascii=False)
        assert param in detail, (
            f"{route}?{param}={value!r}: the error should name {param!r}, got {detail}"
        )


@given(value=TEXT)
@example(value="²")
@example(value="٣")
def test_a_bad_expiry_in_the_console_token_form_is_a_message_not_a_500(server, value):
    client = server.console_client
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/tokens").text).group(1)
    answer = client.post(
        "/tokens", data={"name": "hostile", "expires_in_days": value, "csrf_token": csrf}
    )
    assert answer.status_code < 500, (
        f"console token form expires_in_days={value!r}: got {answer.status_code}"
    )
    if answer.status_code >= 400:
        assert answer.status_code == 422, f"expires_in_days={value!r}: got {answer.status_code}"
        assert re.search(r"expires[ _]in[ _]days", answer.text), (
            f"expires_in_days={value!r}: the page should name the field; got {answer.text[:2000]}"
        )


@pytest.mark.parametrize(
    ("page", "param"),
    [("device", "start"), ("device", "stop"), ("alerts", "since"), ("alerts", "until")],
)
@given(value=TEXT)
@example(value="²")
@example(value="2026-01-01²10:30")  # fromisoformat takes any character between date and time
def test_a_bad_time_in_a_console_page_is_never_a_5xx(server, page, param, value):
    if page == "device":
        params = {"range": "custom", "start": "2026-11-27T10:00", "stop": "2026-11-27T11:00"}
        params[param] = value
        answer = server.console_client.get(f"/devices/{server.device_id}", params=params)
    else:
        answer = server.console_client.get("/alerts", params={param: value})
    assert answer.status_code < 500, (
        f"console {page} page {param}={value!r}: expected no 5xx, got {answer.status_code}"
    )


def test_a_preview_takes_epoch_milliseconds_like_every_other_time(server):
    stop = int(time.time() * 1000)
    body = {"rule": preview_rule(server), "start": stop - 3_600_000, "stop": stop}
    answer = server.api_client.post("/api/v1/alert-rules/preview", json=body)
    assert answer.status_code == 200, (
        f"preview over the last hour in epoch ms: expected 200, got {answer.status_code} "
        f"{answer.text}"
    )
    got = (answer.json()["start"], answer.json()["stop"])
    assert got == (body["start"], body["stop"]), (
        f"the preview's period: expected {(body['start'], body['stop'])} (ms), got {got}"
    )
