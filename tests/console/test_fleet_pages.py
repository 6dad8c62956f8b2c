"""The device page's fleet part over HTTP (issue 15): desired config beside what the
device reported, "pending" until it reports; the config and command forms send through
the public API and show its refusals; the device's answers (published over MQTT as the
SDK does, through ingestor, queue and storage) appear on the page; another user's
device has no such forms."""

from __future__ import annotations

import html
import json
import re

from tests.console.test_http import csrf_of, sign_in
from tests.support.servers import wait_for


def page(client, device) -> str:
    answer = client.get(f"/devices/{device['id']}")
    assert answer.status_code == 200, answer.text
    return html.unescape(answer.text)


def section(text: str, heading_id: str) -> str:
    found = re.search(rf'<h2 id="{heading_id}">.*?</section>', text, re.S)
    assert found, f"no section {heading_id}"
    text = re.sub(r"</t[dh]>", " | ", found.group(0))  # table cells stay apart
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text))


def answer_as_device(stack, device, kind: str, body: dict) -> None:
    link = stack.connect(device)
    info = link.publish(json.dumps(body).encode(), topic=f"devices/{device['id']}/{kind}")
    info.wait_for_publish(10)


def test_config_form_pending_then_applied(console_stack):
    greenhouse = console_stack.ada.devices["Greenhouse 1"]
    client = sign_in(console_stack, console_stack.ada)
    form = {"csrf_token": csrf_of(client, f"/devices/{greenhouse['id']}")}
    sent = client.post(
        f"/devices/{greenhouse['id']}/config",
        data={**form, "interval_s": "30", "sensors": "dht22:4, simulated:outside", "app": ""},
    )
    assert sent.status_code == 303 and "notice=config-sent" in sent.headers["location"]
    state = console_stack.ada.api.get(f"/api/v1/devices/{greenhouse['id']}/config").json()
    version = state["desired"]["version"]
    assert state["desired"]["config"]["sensors"] == [
        {"kind": "dht22", "pin": 4},
        {"kind": "simulated", "name": "outside"},
    ]
    shown = section(page(client, greenhouse), "config-h")
    assert f"pending: version {version} is sent" in shown and '"interval_s": 30' in shown
    answer_as_device(
        console_stack, greenhouse, "config/reported", {"version": version, "status": "applied"}
    )
    wait_for(
        lambda: f"version {version} applied" in section(page(client, greenhouse), "config-h"),
        30,
        "the device's report on the page",
    )
    shown = section(page(client, greenhouse), "config-h")
    assert re.search(rf"Reported ?version {version}, applied, \d{{4}}-\d\d-\d\d [\d:]+ UTC", shown)


def test_refused_config_forms_say_why_and_send_nothing(console_stack):
    mast = console_stack.ada.devices["Weather mast"]
    client = sign_in(console_stack, console_stack.ada)
    form = {"csrf_token": csrf_of(client, f"/devices/{mast['id']}")}
    before = console_stack.ada.api.get(f"/api/v1/devices/{mast['id']}/config").json()
    cases = [
        ({"sensors": "dht22"}, "dht22 needs a GPIO number for pin"),
        ({"interval_s": "soon"}, "is not a number of seconds"),
        ({"interval_s": "0"}, "interval_s"),
        ({"app": "{not json"}, "app settings: not JSON"),
        ({}, "fill in at least one"),
    ]
    for fields, reason in cases:
        answer = client.post(f"/devices/{mast['id']}/config", data={**form, **fields})
        assert answer.status_code == 422, (fields, answer.status_code)
        assert reason in section(html.unescape(answer.text), "config-h"), (fields, reason)
    after = console_stack.ada.api.get(f"/api/v1/devices/{mast['id']}/config").json()
    assert after == before


def test_command_form_and_the_devices_answer(console_stack):
    greenhouse = console_stack.ada.devices["Greenhouse 1"]
    client = sign_in(console_stack, console_stack.ada)
    form = {"csrf_token": csrf_of(client, f"/devices/{greenhouse['id']}")}
    sent = client.post(
        f"/devices/{greenhouse['id']}/commands",
        data={**form, "name": "calibrate", "args": '{"to": 21.5}'},
    )
    assert sent.status_code == 303 and "notice=command-sent" in sent.headers["location"]
    command = console_stack.ada.api.get(f"/api/v1/devices/{greenhouse['id']}/commands").json()[0]
    assert command["name"] == "calibrate" and command["args"] == {"to": 21.5}
    listed = section(page(client, greenhouse), "commands-h")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| calibrate \| pending \|", listed), (
        listed
    )
    answer_as_device(
        console_stack, greenhouse, "commands/result",
        {"id": command["id"], "ok": True, "result": {"offset": -0.25}},
    )  # fmt: skip
    wait_for(
        lambda: (
            'calibrate | succeeded | {"offset": -0.25}'
            in section(page(client, greenhouse), "commands-h")
        ),
        30,
        "the command's result on the page",
    )
    refused = client.post(
        f"/devices/{greenhouse['id']}/commands", data={**form, "name": "Not A Name"}
    )
    assert refused.status_code == 422 and "name: " in html.unescape(refused.text)


def test_another_users_device_has_no_fleet_forms(console_stack):
    greenhouse = console_stack.ada.devices["Greenhouse 1"]
    bob = sign_in(console_stack, console_stack.bob)
    form = {"csrf_token": csrf_of(bob, "/devices")}
    for path, fields in (("config", {"interval_s": "1"}), ("commands", {"name": "reboot"})):
        answer = bob.post(f"/devices/{greenhouse['id']}/{path}", data={**form, **fields})
        assert answer.status_code == 404, (path, answer.status_code)
    commands = console_stack.ada.api.get(f"/api/v1/devices/{greenhouse['id']}/commands").json()
    assert "reboot" not in [c["name"] for c in commands]
