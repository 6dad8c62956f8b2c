"""A device added in the web console, put on a board by hand: the config.json the console
offers, copied with the SDK and the app onto the rig's flash, brings it online with
readings in the API (issue 17, item 4)."""

from __future__ import annotations

import html
import json
import re
import time
from types import SimpleNamespace

import pytest

from fieldline_provision.board_files import firmware_files
from hil_tests.rig import Rig
from tests.console.test_http import csrf_of, sign_in


@pytest.fixture
def backend(live_backend):
    return live_backend


def readings(backend, device_id: str) -> list:
    answer = backend.api_get(f"/devices/{device_id}/telemetry", fields="temperature", start="-10m")
    return answer["fields"]["temperature"]


def add_in_console(backend, **fields) -> tuple[int, str]:
    console = sign_in(
        SimpleNamespace(base_url=backend.api_url),
        SimpleNamespace(username=backend.username, password=backend.password),
    )
    try:
        form = {"csrf_token": csrf_of(console, "/devices/new"), **fields}
        answer = console.post("/devices/new", data=form)
    finally:
        console.close()
    return answer.status_code, answer.text


def test_a_device_added_in_the_console_comes_online_from_its_config_json(backend, tmp_path):
    status, page = add_in_console(
        backend, name="Hand-made", tags="room=shed\nfloor: 1", sensors="simulated",
        interval_s="1",
    )  # fmt: skip
    assert status == 201, page
    config_text = re.search(r"<textarea[^>]*data-config-json>(.*?)</textarea>", page, re.S)
    config = json.loads(html.unescape(config_text.group(1)))
    device_id = config["device_id"]
    assert config["mqtt"]["password"] in page  # shown once, on this page
    assert f"provision flash --device-id {device_id}" in html.unescape(page)

    flash = tmp_path / "flash"  # the files a person copies with mpremote cp
    for board_file in firmware_files():
        target = flash / board_file.board_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(board_file.data)
    (flash / "config.json").write_text(html.unescape(config_text.group(1)))
    with Rig(flash):  # the board resets into main.py
        deadline = time.monotonic() + 60
        while not (points := readings(backend, device_id)):
            assert time.monotonic() < deadline, "no reading from the hand-made board in 60 s"
            time.sleep(0.5)
    device = next(d for d in backend.devices() if d["id"] == device_id)
    assert device["metadata"] == {"room": "shed", "floor": "1"}
    assert points


def test_a_bad_sensor_or_tag_registers_nothing_and_names_the_field(backend):
    status, page = add_in_console(backend, name="x", sensors="dht22")
    assert status == 422 and "dht22 needs a GPIO number for pin" in html.unescape(page), page
    status, page = add_in_console(backend, name="x", tags="no equals sign")
    assert status == 422 and "tags, line 1: write key=value" in page, page
    assert backend.device_ids() == []
