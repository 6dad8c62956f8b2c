"""OTA updates in the console over HTTP (issue 15): the rollouts list and a rollout's page
(state, halted reason, canaries, the counts, each device's state, progress and error),
refreshed while it runs and cancelled behind a confirmation; the device page's Update
section (running version, its newest rollout entry); the start form and the bundle
upload, which send through the public API and show its refusals; another user's
rollouts, bundles and update states do not exist. On the real stack (both flavours of
console_stack): bundles and rollouts are made through the API, the devices' reports are
posted as storage passes them on (the devices service's internal route) or published by
the device through the broker."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx

from fieldline_backend.console.api import ApiError
from fieldline_backend.console.fleet_view import fleet_view
from fieldline_backend.console.web import templates
from fieldline_provision.bundle import make_bundle
from tests.console.conftest import _register
from tests.console.test_fleet_pages import answer_as_device, section
from tests.console.test_http import csrf_of, sign_in
from tests.support.servers import wait_for

ERROR = "app.py: ImportError: no module named 'sensors2'"


# ---- helpers (test_browser.py's screenshots use them too) ------------------------------


@contextmanager
def boards(stack, person, *names: str) -> Iterator[list[dict]]:
    """Devices of `person` for one test, deleted after it (the other console tests
    count the person's devices)."""
    made = [_register(person, name) for name in names]
    try:
        yield made
    finally:
        for device in made:
            person.devices.pop(device["name"], None)
            person.api.delete(f"/api/v1/devices/{device['id']}")


def a_bundle(version: str) -> bytes:
    """A tar of app.py (and version.json), by the bundle format's own code."""
    return make_bundle(version, None, [("app.py", b"def run():\n    return 1\n")]).to_tar()


def upload_bundle(person, version: str = "1.4.0") -> dict:
    answer = person.api.post(
        "/api/v1/bundles",
        content=a_bundle(version),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def start_rollout(person, devices: list[dict], version: str = "1.4.0", **options) -> dict:
    bundle = upload_bundle(person, version)
    body = {"bundle_id": bundle["id"], "devices": [d["id"] for d in devices], **options}
    answer = person.api.post("/api/v1/rollouts", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def report(stack, device_id: str, body: dict) -> None:
    """A device's ota/reported, as storage passes it on to the devices service."""
    with stack.running.internal_client() as http:
        answer = http.post(
            f"/internal/devices/{device_id}/ota/reported",
            json=body | {"at": datetime.now(UTC).isoformat()},
        )
    assert answer.status_code == 204, answer.text


def step(stack, rollout: dict, device_id: str, state: str, **more) -> None:
    base = {"rollout": rollout["id"], "version": rollout["version"], "state": state}
    report(stack, device_id, base | more)


def finish(stack, rollout: dict, device_id: str, how: str = "confirmed", error=None) -> None:
    step(stack, rollout, device_id, "downloading", progress=50)
    step(stack, rollout, device_id, "staged")
    step(stack, rollout, device_id, how, **({"error": error} if error else {}))


def canaries(rollout: dict) -> list[str]:
    return [d["device_id"] for d in rollout["devices"] if d["canary"]]


def rollout_now(person, rollout: dict) -> dict:
    return person.api.get(f"/api/v1/rollouts/{rollout['id']}").json()


def cancel_quietly(person, rollout: dict) -> None:
    person.api.post(f"/api/v1/rollouts/{rollout['id']}/cancel")


def text_of(markup: str) -> str:
    """What a person reads: tags out, table cells apart, spaces folded."""
    markup = re.sub(r"</t[dh]>", " | ", markup)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


def get_page(client: httpx.Client, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:500])
    return answer.text


def row(markup: str, device_id: str) -> str:
    found = re.search(rf'<tr data-device="{device_id}">.*?</tr>', markup, re.S)
    assert found, f"no row of {device_id}"
    return text_of(found.group(0))


@contextmanager
def rollout_scene(stack) -> Iterator[dict]:
    """For the screenshots (test_browser.py): the weather mast and three more boards in
    a rolling rollout of 1.5.0 (a canary confirmed, one rolled back, one downloading,
    one offered), the greenhouse downloading the same bundle in a rollout of its own at
    60 %. Cancelled after, the greenhouse's update finished, the extra boards deleted."""
    ada = stack.ada
    greenhouse, mast = ada.devices["Greenhouse 1"], ada.devices["Weather mast"]
    with boards(stack, ada, "Barn", "Orchard", "Cellar") as extra:
        for device in (greenhouse, mast, *extra):
            report(stack, device["id"], {"version": "1.4.0", "state": "running"})
        main = start_rollout(ada, [mast, *extra], "1.5.0", canary_fraction=0.5,
                             max_failure_ratio=0.5)  # fmt: skip
        first, second = canaries(main)
        finish(stack, main, first)
        finish(stack, main, second, "rolled_back", ERROR)
        rest = [d["device_id"] for d in main["devices"] if not d["canary"]]
        step(stack, main, rest[0], "downloading", progress=30)
        own = start_rollout(ada, [greenhouse], "1.5.0")
        step(stack, own, greenhouse["id"], "downloading", progress=60)
        try:
            yield {"rollout": rollout_now(ada, main), "greenhouse_rollout": own}
        finally:
            for rollout in (main, own):
                cancel_quietly(ada, rollout)
            for rollout, device_id in ((own, greenhouse["id"]), (main, rest[0])):
                for state in ("staged", "rebooting", "confirmed"):  # nothing left moving
                    step(stack, rollout, device_id, state)


# ---- the rollout's page ------------------------------------------------------------------


def test_a_halted_rollout_shows_why_each_devices_state_and_its_counts(console_stack):
    stack, ada = console_stack, console_stack.ada
    client = sign_in(stack, ada)
    with boards(stack, ada, "OTA a1", "OTA a2", "OTA a3", "OTA a4", "OTA a5") as devices:
        names = {d["id"]: d["name"] for d in devices}
        rollout = start_rollout(ada, devices, canary_fraction=0.4, max_failure_ratio=0.2)
        first, second = canaries(rollout)
        page = get_page(client, f"/rollouts/{rollout['id']}")
        shown = text_of(page)
        assert "Rollout of version 1.4.0" in shown
        assert "canary only the canary devices are offered the bundle" in shown
        assert "3 queued" in shown and "2 offered" in shown
        assert "40 % of the devices: 2 offered first" in shown
        assert "more than 20 % of the devices that finished failed" in shown
        assert f'data-live="/rollouts/{rollout["id"]}/live"' in page  # it refreshes itself
        assert re.search(rf"{names[first]} \| yes \| offered \|", row(page, first))

        step(stack, rollout, first, "downloading", progress=40)
        page = get_page(client, f"/rollouts/{rollout['id']}")
        assert re.search(r"yes \| downloading \| 40 % \|", row(page, first)), row(page, first)
        assert '<progress max="100" value="40"' in page

        finish(stack, rollout, first)
        finish(stack, rollout, second, "rolled_back", ERROR)
        page = get_page(client, f"/rollouts/{rollout['id']}")
        shown = text_of(page)
        assert "halted too many devices failed" in shown, shown
        halted = rollout_now(ada, rollout)
        assert halted["state"] == "halted"
        assert f"Halted: {halted['halted_reason']}" in shown
        assert "3 queued" in shown and "1 confirmed" in shown and "1 rolled back" in shown
        assert "5 (2 finished, 1 of them failed)" in shown
        assert re.search(r"yes \| rolled back \| \| " + re.escape(ERROR), row(page, second))
        assert re.search(r"yes \| confirmed \| \| \|", row(page, first))
        for device_id in set(names) - {first, second}:
            assert re.search(r"no \| queued \|", row(page, device_id))
        assert "data-live" not in page  # nothing moves any more
        assert "Cancel rollout" in shown  # a halted rollout may still be cancelled

        listed = get_page(client, "/rollouts")
        entry = re.search(rf'<tr data-rollout="{rollout["id"]}">.*?</tr>', listed, re.S)
        assert entry, "the rollout is not listed"
        assert re.match(
            r"1\.4\.0 \| halted \| 3 queued, 1 confirmed, 1 rolled back \| \d{4}-\d\d-\d\d ",
            text_of(entry.group(0)),
        ), text_of(entry.group(0))

        # The device pages: the canary that rolled back says why, with a link here.
        update = section(html.unescape(get_page(client, f"/devices/{second}")), "update-h")
        assert "version 1.4.0, as a canary; the rollout is halted" in update, update
        assert "rolled back" in update and ERROR in update
        assert f'href="/rollouts/{rollout["id"]}"' in get_page(client, f"/devices/{second}")
        update = section(html.unescape(get_page(client, f"/devices/{first}")), "update-h")
        assert "confirmed runs the new version" in update, update
        cancel_quietly(ada, rollout)


def test_a_running_rollout_refreshes_and_is_cancelled_behind_a_confirmation(console_stack):
    stack, ada = console_stack, console_stack.ada
    client = sign_in(stack, ada)
    with boards(stack, ada, "OTA b1", "OTA b2") as devices:
        rollout = start_rollout(ada, devices, version="2.0.0", canary_fraction=0.5)
        (canary,) = canaries(rollout)
        (other,) = [d["id"] for d in devices if d["id"] != canary]
        finish(stack, rollout, canary)
        assert rollout_now(ada, rollout)["state"] == "rolling"
        page = get_page(client, f"/rollouts/{rollout['id']}")
        assert "rolling the canaries did well" in text_of(page)
        assert re.search(r"no \| offered \|", row(page, other))
        live = f"/rollouts/{rollout['id']}/live"
        assert f'data-live="{live}"' in page

        # The device downloads: the fragment the page's script fetches shows it.
        step(stack, rollout, other, "downloading", progress=70)
        fragment = get_page(client, live)
        assert "<html" not in fragment and 'name="csrf_token"' not in fragment
        assert re.search(r"no \| downloading \| 70 % \|", row(fragment, other))
        # ...and so does the device page's Update section, refreshed while it moves.
        device_page = get_page(client, f"/devices/{other}")
        assert f'data-live="/devices/{other}/update/live"' in device_page
        update = text_of(get_page(client, f"/devices/{other}/update/live"))
        assert "version 2.0.0 ; the rollout is rolling" in update, update
        assert "downloading 70 %" in update

        # Cancel: a confirmation page first; without the form's token it is refused.
        confirm = text_of(get_page(client, f"/rollouts/{rollout['id']}/cancel"))
        assert (
            "Cancel this rollout" in confirm and "Version 2.0.0 to 2 device(s), rolling" in confirm
        )
        refused = client.post(f"/rollouts/{rollout['id']}/cancel", data={})
        assert refused.status_code == 403
        assert rollout_now(ada, rollout)["state"] == "rolling"
        token = csrf_of(client, f"/rollouts/{rollout['id']}/cancel")
        done = client.post(f"/rollouts/{rollout['id']}/cancel", data={"csrf_token": token})
        assert done.status_code == 303
        assert done.headers["location"] == f"/rollouts/{rollout['id']}?notice=rollout-cancelled"
        page = get_page(client, done.headers["location"])
        shown = text_of(page)
        assert "The rollout is cancelled" in shown and "cancelled stopped" in shown
        assert "Cancel rollout" not in shown
        # The device that was downloading finishes, and the page says so (it still
        # refreshes while such a device moves).
        assert f'data-live="{live}"' in page
        step(stack, rollout, other, "staged")
        step(stack, rollout, other, "confirmed")
        assert re.search(r"no \| confirmed \|", row(get_page(client, live), other))
        again = client.post(f"/rollouts/{rollout['id']}/cancel", data={"csrf_token": token})
        assert again.headers["location"].endswith("notice=rollout-not-running")


def test_the_running_version_comes_from_the_device_through_the_broker(console_stack):
    stack, ada = console_stack, console_stack.ada
    client = sign_in(stack, ada)
    with boards(stack, ada, "OTA c1") as (device,):
        update = section(html.unescape(get_page(client, f"/devices/{device['id']}")), "update-h")
        assert "Running version not reported yet" in update, update
        assert "none has included this device yet" in update
        link = stack.connect(device)
        try:
            answer_as_device(
                stack, device, "ota/reported", {"version": "1.3.2", "state": "running"}
            )
            wait_for(
                lambda: (
                    "Running version 1.3.2 (reported 20"
                    in section(
                        html.unescape(get_page(client, f"/devices/{device['id']}")), "update-h"
                    )
                ),
                30,
                "the running version on the device page",
            )
        finally:
            link.close()
            stack.mqtt.pop(device["id"], None)


# ---- the forms -----------------------------------------------------------------------------


def test_upload_a_bundle_then_start_a_rollout_with_the_form(console_stack):
    stack, ada = console_stack, console_stack.ada
    client = sign_in(stack, ada)
    with boards(stack, ada, "OTA d1", "OTA d2", "OTA d3") as devices:
        token = csrf_of(client, "/bundles")
        tar = a_bundle("3.1.0")

        def upload(data: bytes, name: str = "app.tar") -> httpx.Response:
            files = {"bundle": (name, data, "application/x-tar")}
            return client.post("/bundles", data={"csrf_token": token}, files=files)

        sent = upload(tar)
        assert sent.status_code == 303, sent.text
        location = sent.headers["location"]
        assert (
            location.startswith("/rollouts/new?bundle_id=") and "notice=bundle-uploaded" in location
        )
        bundle_id = re.search(r"bundle_id=([0-9a-f]{64})", location).group(1)
        stored = ada.api.get(f"/api/v1/bundles/{bundle_id}").json()
        assert stored["version"] == "3.1.0"
        assert "notice=bundle-known" in upload(tar).headers["location"]
        for data, reason in ((b"not a tar at all", None), (b"", "choose a bundle file")):
            refused = upload(data)
            assert refused.status_code == 422, refused.status_code
            errors = re.search(r'<ul class="error".*?</ul>', refused.text, re.S)
            assert errors, "the refusal does not say why"
            if reason:
                assert reason in text_of(errors.group(0))
        too_big = upload(b"\0" * (600 * 1024))  # over 512 KiB, under the body limit
        assert too_big.status_code == 413 and "at most 524288 bytes" in text_of(too_big.text)
        without_token = client.post(
            "/bundles", files={"bundle": ("a.tar", tar, "application/x-tar")}
        )
        assert without_token.status_code == 403
        listed = text_of(get_page(client, "/bundles"))
        assert re.search(r"3\.1\.0 \| 2 \(source\) \| \d+ (bytes|KiB) \|", listed), listed

        # The form: the bundle chosen, a device ticked from the device page's link.
        form_page = get_page(
            client, f"/rollouts/new?bundle_id={bundle_id}&device_id={devices[0]['id']}"
        )
        assert f'<option value="{bundle_id}" selected>' in form_page
        assert re.search(rf'value="{devices[0]["id"]}" checked', form_page)
        assert not re.search(rf'value="{devices[1]["id"]}" checked', form_page)
        assert stack.bob.devices["Bob's shed"]["id"] not in form_page
        form = {"csrf_token": token, "bundle_id": bundle_id, "canary_percent": "34",
                "failure_percent": "50"}  # fmt: skip
        ids = [d["id"] for d in devices]
        cases = [
            ({"devices": ids, "canary_percent": "150"}, "canaries: '150' is not a percentage"),
            ({"devices": ids, "failure_percent": "lots"}, "failure share: 'lots' is not"),
            ({}, "devices: tick at least one"),
            ({"devices": ids, "bundle_id": "f" * 64}, "bundle"),  # the API's 404
        ]
        before = ada.api.get("/api/v1/rollouts").json()
        for fields, reason in cases:
            answer = client.post("/rollouts", data={**form, **fields})
            assert answer.status_code in (404, 422), (fields, answer.status_code)
            assert reason in text_of(answer.text), (fields, text_of(answer.text)[:2000])
        assert ada.api.get("/api/v1/rollouts").json() == before

        started = client.post("/rollouts", data={**form, "devices": ids, "allow_downgrade": "on"})
        assert started.status_code == 303, started.text
        assert re.fullmatch(
            r"/rollouts/ro-[a-z2-7]{16}\?notice=rollout-started", started.headers["location"]
        )
        rollout_id = started.headers["location"].split("/")[2].split("?")[0]
        rollout = ada.api.get(f"/api/v1/rollouts/{rollout_id}").json()
        assert rollout["bundle_id"] == bundle_id and rollout["canary_fraction"] == 0.34
        assert rollout["max_failure_ratio"] == 0.5 and rollout["allow_downgrade"] is True
        assert sorted(d["device_id"] for d in rollout["devices"]) == sorted(ids)
        shown = text_of(get_page(client, started.headers["location"]))
        assert "The rollout is started" in shown and "2 offered" in shown and "1 queued" in shown
        assert "Downgrade allowed" in shown

        # A device busy in a running rollout: the API's 409, said on the form.
        busy = client.post("/rollouts", data={**form, "devices": ids[0]})
        assert busy.status_code == 409 and ids[0] in text_of(busy.text)
        # Its bundle cannot be deleted while it runs; after the cancel it can.
        delete_page = text_of(get_page(client, f"/bundles/{bundle_id}/delete"))
        assert "Delete this bundle" in delete_page and "Version 3.1.0" in delete_page
        kept = client.post(f"/bundles/{bundle_id}/delete", data={"csrf_token": token})
        assert kept.status_code == 409, kept.status_code
        assert ada.api.get(f"/api/v1/bundles/{bundle_id}").status_code == 200
        cancel_quietly(ada, rollout)
        gone = client.post(f"/bundles/{bundle_id}/delete", data={"csrf_token": token})
        assert (
            gone.status_code == 303 and gone.headers["location"] == "/bundles?notice=bundle-deleted"
        )
        assert ada.api.get(f"/api/v1/bundles/{bundle_id}").status_code == 404


# ---- owners apart --------------------------------------------------------------------------


def test_another_users_rollouts_bundles_and_update_states_do_not_exist(console_stack):
    stack, ada = console_stack, console_stack.ada
    with boards(stack, ada, "OTA e1") as devices:
        rollout = start_rollout(ada, devices, version="4.0.0")
        device_id = devices[0]["id"]
        bob = sign_in(stack, stack.bob)
        for path in (
            f"/rollouts/{rollout['id']}",
            f"/rollouts/{rollout['id']}/live",
            f"/rollouts/{rollout['id']}/cancel",
            f"/devices/{device_id}/update/live",
            f"/bundles/{rollout['bundle_id']}/delete",
            "/rollouts/ro-aaaaaaaaaaaaaaaa",
            "/rollouts/not-an-id",
        ):
            assert bob.get(path).status_code == 404, path
        token = csrf_of(bob, "/rollouts")
        for path in (
            f"/rollouts/{rollout['id']}/cancel",
            f"/bundles/{rollout['bundle_id']}/delete",
        ):
            assert bob.post(path, data={"csrf_token": token}).status_code == 404, path
        assert rollout_now(ada, rollout)["state"] == "canary"
        assert ada.api.get(f"/api/v1/bundles/{rollout['bundle_id']}").status_code == 200
        for path in ("/rollouts", "/bundles", "/rollouts/new"):
            page = get_page(bob, path)
            assert rollout["id"] not in page and rollout["bundle_id"] not in page, path
            assert device_id not in page, path
        # A rollout of ada's device started by bob: the API's 404, nothing made.
        answer = bob.post(
            "/rollouts",
            data={"csrf_token": token, "bundle_id": rollout["bundle_id"], "devices": device_id},
        )
        assert answer.status_code == 404
        assert stack.bob.api.get("/api/v1/rollouts").json() == []
        cancel_quietly(ada, rollout)


# ---- the device page without the update route ---------------------------------------------


class OlderServer:
    """The API of a server from before OTA: GET .../update is a 404 (no such route)."""

    def __init__(self, failure: ApiError):
        self.failure = failure

    async def get(self, path: str, **params):
        if path.endswith("/update"):
            raise self.failure
        if path.endswith("/config"):
            return {"desired": None, "reported": None, "pending": False}
        return []  # commands


def test_the_device_page_stands_when_the_update_route_is_missing_or_failing():
    for failure, says in (
        (ApiError(404, "Not Found"), "this server does not report update states"),
        (ApiError(503, "devices service unavailable"), "devices service unavailable"),
    ):
        fleet = asyncio.run(fleet_view(OlderServer(failure), "dev-aaaaaaaaaaaa"))
        assert fleet["state"] == "none" and fleet["commands"] == []
        assert fleet["ota"] == {"available": False, "reason": says}
        shown = text_of(
            templates.env.get_template("_device_update.html").render(update=fleet["ota"])
        )
        assert shown == f"Update state not available: {says}."
