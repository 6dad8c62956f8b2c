"""Whatever a person (or a script) types into the console's forms and query strings, the
answer is a page or a message, never a server error (hypothesis, both stacks)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.console.test_http import csrf_of, sign_in
from tests.console.test_rollout_pages import upload_bundle

TEXT = st.text(max_size=30)
NUMBERISH = st.one_of(TEXT, st.floats(allow_nan=True).map(str), st.integers().map(str))


@pytest.fixture(scope="module")
def ada(console_stack) -> httpx.Client:
    client = sign_in(console_stack, console_stack.ada)
    client.headers["x-csrf-token"] = csrf_of(client)
    yield client
    client.close()


@given(
    form=st.fixed_dictionaries(
        {
            "name": TEXT,
            "field": TEXT,
            "condition": TEXT,
            "for": TEXT,
            "recipients": TEXT,
            "repeat_every": TEXT,
            "warn": NUMBERISH,
            "crit": NUMBERISH,
            "clear": NUMBERISH,
            "action": st.sampled_from(["preview", "save"]),
        }  # fmt: skip
    ),
    own_device=st.booleans(),
)
@settings(max_examples=25)  # two requests each, on two stacks: bounded CI time
def test_rule_form_answers_a_page_or_a_message(console_stack, ada, form, own_device):
    form["device_id"] = console_stack.ada.devices["Weather mast"]["id"] if own_device else "x"
    answer = ada.post("/rules/save", data=form)
    assert answer.status_code in (200, 303, 422), (form, answer.status_code, answer.text[:300])
    preview = ada.post("/rules/preview", data=form)
    assert preview.status_code == 200, (form, preview.status_code, preview.text[:300])


@given(name=TEXT, days=TEXT)
def test_token_form_answers_a_page_or_a_message(ada, name, days):
    answer = ada.post("/tokens", data={"name": name, "expires_in_days": days})
    assert answer.status_code in (201, 422), (name, days, answer.status_code)


@given(
    range_=st.one_of(st.sampled_from(["1h", "1d", "7d", "custom"]), TEXT),
    start=TEXT,
    stop=TEXT,
    width=st.one_of(st.integers(-10, 200_000).map(str), TEXT),
)
@settings(max_examples=25)
def test_device_live_answers_a_page_or_a_message(console_stack, ada, range_, start, stop, width):
    device = console_stack.ada.devices["Greenhouse 1"]
    params = {"range": range_, "start": start, "stop": stop, "width": width}
    answer = ada.get(f"/devices/{device['id']}/live", params=params)
    assert answer.status_code in (200, 400, 422), (params, answer.status_code, answer.text[:300])
    page = ada.get(f"/devices/{device['id']}", params=params)
    assert page.status_code == 200, (params, page.status_code, page.text[:300])


@given(level=st.lists(TEXT, max_size=3), since=TEXT, device_id=TEXT)
def test_alert_filters_answer_a_page(ada, level, since, device_id):
    answer = ada.get("/alerts", params={"level": level, "since": since, "device_id": device_id})
    assert answer.status_code == 200, (level, since, device_id, answer.text[:300])


@given(
    bundle=st.one_of(TEXT, st.just("own")),
    devices=st.lists(st.one_of(TEXT, st.just("own")), max_size=3),
    canary=NUMBERISH,
    failure=NUMBERISH,
    downgrade=TEXT,
)
@settings(max_examples=25)
def test_rollout_form_answers_a_page_or_a_message(
    console_stack, ada, bundle, devices, canary, failure, downgrade
):
    own_bundle = upload_bundle(console_stack.ada, "9.9.9")["id"]
    mast = console_stack.ada.devices["Weather mast"]["id"]
    form = {
        "bundle_id": own_bundle if bundle == "own" else bundle,
        "devices": [mast if d == "own" else d for d in devices],
        "canary_percent": canary, "failure_percent": failure, "allow_downgrade": downgrade,
    }  # fmt: skip
    answer = ada.post("/rollouts", data=form)
    assert answer.status_code in (303, 404, 409, 422), (form, answer.status_code, answer.text[:300])
    if answer.status_code == 303:  # started: stop it, the mast stays free
        rollout_id = answer.headers["location"].split("/")[2].split("?")[0]
        console_stack.ada.api.post(f"/api/v1/rollouts/{rollout_id}/cancel").raise_for_status()
    page = ada.get("/rollouts/new", params={"bundle_id": bundle, "device_id": devices})
    assert page.status_code == 200, (bundle, devices, page.status_code)


@given(data=st.binary(max_size=2048), name=TEXT)
@settings(max_examples=25)
def test_bundle_upload_answers_a_page_or_a_message(ada, data, name):
    answer = ada.post("/bundles", files={"bundle": (name or "x.tar", data, "application/x-tar")})
    assert answer.status_code in (303, 422), (data[:50], answer.status_code, answer.text[:300])
