"""The console in a real browser: Debian's Chromium, headless, driven by Playwright
(never Playwright's own browser downloads), against a whole `fieldline up` with data.

Issue 9, "Done when": 1 login and the devices list; 2 a chart checked against the query
API and a reading that appears without a reload; 3 a rule made through the form with its
preview, then a breach in the alert history; 4 CSRF, login redirects, the API on bearer
tokens; 5 screenshots of every page at desktop and phone width (artifacts/screenshots/),
with issue 15's rollout pages and the device page's Update section (rollout-*.png,
device-update-*.png).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console.conftest import SCREENSHOTS
from tests.console.test_rollout_pages import rollout_scene, step
from tests.support.servers import wait_for

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}
LIVE_TIMEOUT_MS = 15_000  # "within a few seconds": the pages poll every 5 s


@pytest.fixture(scope="module")
def browser() -> Browser:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: scripts/services.sh up installs it "
            "(apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def open_page(browser: Browser, stack, viewport=DESKTOP) -> Page:
    context = browser.new_context(base_url=stack.base_url, viewport=viewport)
    context.set_default_timeout(20_000)
    return context.new_page()


def sign_in(page: Page, person) -> None:
    """With the keyboard only: the username box has the focus, Tab, Enter."""
    page.goto("/devices")
    assert re.search(r"/login\?next=", page.url), page.url
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    page.keyboard.type(person.username)
    page.keyboard.press("Tab")
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^[^?]*/devices$"))


@pytest.fixture(scope="module")
def ada_page(browser, console_stack) -> Page:
    page = open_page(browser, console_stack)
    sign_in(page, console_stack.ada)
    yield page
    page.context.close()


def test_1_devices_list_shows_own_devices_with_state(ada_page, console_stack):
    page = ada_page
    page.goto("/devices")
    greenhouse = page.locator("tr", has=page.get_by_role("link", name="Greenhouse 1"))
    mast = page.locator("tr", has=page.get_by_role("link", name="Weather mast"))
    expect(greenhouse.locator("[data-state]")).to_have_text("online")
    expect(mast.locator("[data-state]")).to_have_text("offline")
    expect(greenhouse.locator("svg.spark path")).to_have_count(1)  # a sparkline
    expect(page.locator("tbody tr[data-device]")).to_have_count(2)
    assert "Bob" not in page.content()
    shed = console_stack.bob.devices["Bob's shed"]
    assert shed["id"] not in page.content()
    # (The list's live fragment, /devices/live, is checked for Bob's device in test_http.)
    # Keyboard: the first Tab stop is the skip link.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def _path_points(d: str) -> int:
    return len(re.findall(r"-?[\d.]+,-?[\d.]+", d))


def test_2_chart_matches_the_query_api_and_updates_live(ada_page, console_stack):
    page = ada_page
    device = console_stack.ada.devices["Greenhouse 1"]
    page.goto(f"/devices/{device['id']}?range=1d")
    page.wait_for_selector("#live[data-updated]")  # redrawn at the chart's real width
    figure = page.locator("figure.chart[data-field=temperature]")
    attrs = figure.evaluate("f => Object.assign({}, f.dataset)")
    plotted = _path_points(figure.locator("path.line").get_attribute("d"))
    answer = console_stack.ada.api.get(
        f"/api/v1/devices/{device['id']}/telemetry",
        params={"fields": "temperature", "start": attrs["start"], "stop": attrs["stop"],
                "every": attrs["every"], "agg": attrs["agg"]},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    expected = len(answer.json()["fields"]["temperature"])
    assert expected > 100, "the day of readings should give many windows"
    assert plotted == int(attrs["points"]) == expected
    pixels = figure.locator("svg.plot").evaluate("svg => svg.clientWidth")
    assert plotted <= pixels, f"{plotted} points on a chart {pixels} px wide"
    assert plotted < 1440  # a day of minutes was aggregated, not sent raw

    # A reading published while the page is open appears without a reload.
    page.goto(f"/devices/{device['id']}")
    page.wait_for_selector("#live[data-updated]")
    page.evaluate("window.__sameDocument = true")
    console_stack.connect(device).publish_all([{"values": {"temperature": 77.5}}])
    latest = page.locator("#live tr[data-field=temperature] .latest-value")
    expect(latest).to_have_text("77.5", timeout=LIVE_TIMEOUT_MS)
    expect(page.locator("figure.chart[data-field=temperature]")).to_have_attribute(
        "data-last", re.compile(r",77\.5$")
    )
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"


def test_2b_chart_axis_ticks_and_the_value_under_the_pointer_or_keys(ada_page, console_stack):
    page = ada_page
    device = console_stack.ada.devices["Greenhouse 1"]
    page.goto(f"/devices/{device['id']}?range=1d")
    page.wait_for_selector("#live[data-updated]")
    figure = page.locator("figure.chart[data-field=temperature]")
    attrs = figure.evaluate("f => Object.assign({}, f.dataset)")
    series = console_stack.ada.api.get(
        f"/api/v1/devices/{device['id']}/telemetry",
        params={"fields": "temperature", "start": attrs["start"], "stop": attrs["stop"],
                "every": attrs["every"], "agg": "mean"},
    ).json()["fields"]["temperature"]  # fmt: skip
    by_ts = dict((ts, value) for ts, value in series)
    # Y ticks: round numbers inside the plotted range, the unit on the top one.
    labels = figure.locator("svg.yaxis text").all_text_contents()
    assert len(labels) >= 2, labels
    assert labels[-1].endswith(" °C"), labels
    ticks = [float(label.removesuffix(" °C")) for label in labels]
    assert ticks == sorted(ticks) and len(set(ticks)) == len(ticks)
    assert min(by_ts.values()) - 1e-9 <= ticks[0] and ticks[-1] <= max(by_ts.values()) + 1e-9
    expect(figure.locator("figcaption")).to_contain_text("temperature (°C)")

    def read() -> tuple[int, float, str]:
        readout = figure.locator("[data-readout]")
        return (
            int(readout.get_attribute("data-ts")),
            float(readout.get_attribute("data-value")),
            readout.inner_text(),
        )

    # The pointer in the middle of the chart: the value and time of the point there.
    plot = figure.locator("svg.plot")
    box = plot.bounding_box()
    plot.hover(position={"x": box["width"] / 2, "y": box["height"] / 2})
    ts, value, text = read()
    assert ts in by_ts and value == pytest.approx(by_ts[ts], rel=1e-5), (ts, value)
    middle = int(attrs["start"]) + (int(attrs["stop"]) - int(attrs["start"])) / 2
    assert abs(ts - middle) <= 2 * int(attrs["every"]), (ts, middle)
    assert re.fullmatch(
        r"-?[0-9.]+ °C at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(mean of the window\)", text
    )
    # The keyboard: Tab reaches the chart, End is the newest point, arrows step through.
    plot.focus()
    page.keyboard.press("End")
    assert read()[0] == series[-1][0]
    page.keyboard.press("ArrowLeft")
    assert read()[0] == series[-2][0] and read()[1] == pytest.approx(series[-2][1], rel=1e-5)
    page.keyboard.press("Home")
    assert read()[0] == series[0][0]
    assert plot.get_attribute("tabindex") == "0"
    # An on/off value: its axis says off and on.
    door = page.locator("figure.chart[data-field=door] svg.yaxis text").all_text_contents()
    assert door == ["off", "on"], door


def test_3_rule_form_preview_save_and_breach_in_history(ada_page, console_stack):
    page = ada_page
    device = console_stack.ada.devices["Greenhouse 1"]
    rule = {
        "name": "Greenhouse too hot", "device_id": device["id"], "field": "temperature",
        "condition": "above", "crit": 25, "for": "0s", "recipients": ["ops@example.com"],
    }  # fmt: skip
    # Below the threshold now (test 2 left 77.5 as the newest value): the rule starts at ok.
    console_stack.connect(device).publish_all([{"values": {"temperature": 21.0}}])
    wait_for(
        lambda: console_stack.ada.api.get(f"/api/v1/devices/{device['id']}/latest").json()[
            "fields"]["temperature"][1] == 21.0,
        20, "the 21.0 reading to be stored",
    )  # fmt: skip
    page.goto("/rules/new")
    page.get_by_label("Name").fill(rule["name"])
    page.get_by_label("Device").select_option(device["id"])
    page.get_by_label("Value").fill("temperature")
    page.get_by_label("Condition").select_option("above")
    page.get_by_label("Critical at").fill("25")
    page.get_by_label("For (how long").fill("0s")
    page.get_by_label("Recipients").fill("ops@example.com")
    expected = console_stack.ada.api.post(
        "/api/v1/alert-rules/preview", json={"rule": rule, "period": "7d"}
    ).json()["notifications"]
    assert expected > 0, "the day of readings crosses 25 every hour"
    # As soon as the rule is complete the preview appears by itself (the page's script)...
    shown = page.locator("[data-preview-count]")
    expect(shown).to_have_text(str(expected))
    # ...and the button gives the same without scripting (a full page).
    page.get_by_role("button", name="Preview last 7 days").click()
    expect(shown).to_be_visible()
    # The API's count now; a minute of new readings cannot change an hourly pattern.
    assert int(shown.inner_text()) == expected
    # The form kept what was typed; save it.
    expect(page.get_by_label("Critical at")).to_have_value("25")
    page.get_by_role("button", name="Save rule").click()
    page.wait_for_url(re.compile(r"/rules\?notice=rule-saved"))
    expect(page.get_by_role("status")).to_have_text("The rule is saved.")
    expect(page.get_by_role("rowheader", name=rule["name"])).to_be_visible()

    # Open the history, then breach: the new alert arrives in the open page.
    time.sleep(2)  # the monitor's first cycles with the rule (every 0.5 s) settle at ok
    page.goto("/alerts")
    before = page.locator("tr[data-alert]").evaluate_all("rows => rows.map(r => r.dataset.alert)")
    page.evaluate("window.__sameDocument = true")
    console_stack.connect(device).publish_all([{"values": {"temperature": 99.0}}])
    page.wait_for_function(
        """([known, name]) => Array.from(document.querySelectorAll("tr[data-level=crit]"))
             .some(r => !known.includes(r.dataset.alert) && r.textContent.includes(name)
                        && r.textContent.includes("99"))""",
        arg=[before, rule["name"]],
        timeout=30_000,
    )
    new_row = page.locator("tr[data-level=crit]", has_text="99").first
    expect(new_row.locator(".level")).to_have_text("CRIT")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    # Filters: by level and by device.
    page.goto("/alerts?level=warn")
    expect(page.locator("tr[data-level=crit]")).to_have_count(0)
    page.goto(f"/alerts?device_id={device['id']}&level=crit")
    expect(page.locator("tr[data-level=crit]", has_text=rule["name"]).first).to_be_visible()


def alert_mail_links(data_dir: Path, subject_start: str) -> dict[str, str]:
    """The labelled links ("Device: URL") of the newest mail whose subject starts so."""
    for path in sorted((data_dir / "mail" / "new").iterdir(), reverse=True):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if str(mail["Subject"]).startswith(subject_start):
            text = mail.get_body(("plain",)).get_content()
            return dict(re.findall(r"^(Device|Rule|Alerts):\s+(\S+)$", text, re.MULTILINE))
    raise AssertionError(f"no mail starting {subject_start!r} in {data_dir / 'mail'}")


def test_3b_the_alert_mail_links_open_console_pages_after_sign_in(browser, console_stack):
    # Test 3's breach mailed ops@example.com; its links go to the public URL's console pages.
    settings = console_stack.running.settings
    links = alert_mail_links(settings.data_dir, "[CRIT] Greenhouse 1: temperature 99")
    device = console_stack.ada.devices["Greenhouse 1"]
    assert links["Device"] == f"{settings.public_url}/devices/{device['id']}", links
    assert links["Rule"].startswith(f"{settings.public_url}/rules/"), links
    page = open_page(browser, console_stack)  # a reader who is not signed in
    try:
        page.goto(links["Device"])
        assert "/login?next=" in page.url, page.url
        page.get_by_label("Username").fill(console_stack.ada.username)
        page.get_by_label("Password").fill(console_stack.ada.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(links["Device"])
        expect(page.get_by_role("heading", name="Greenhouse 1")).to_be_visible()
        page.goto(links["Rule"])
        expect(page.get_by_label("Name")).to_have_value("Greenhouse too hot")
    finally:
        page.context.close()


def test_4_csrf_login_redirect_and_bearer_api(browser, ada_page, console_stack):
    page = ada_page
    # A post from this signed-in browser, but without the form's token: refused.
    forged = page.request.post(
        "/tokens", form={"name": "forged"}, max_redirects=0, fail_on_status_code=False
    )
    assert forged.status == 403
    assert "forged" not in [t["name"] for t in console_stack.ada.api.get("/api/v1/tokens").json()]
    # Without a session every page sends the browser to the login form, and back after.
    fresh = open_page(browser, console_stack)
    try:
        fresh.goto("/rules")
        assert fresh.url.endswith("/login?next=/rules"), fresh.url
        expect(fresh.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        fresh.context.close()
    # A token made in the console works on the API with a bearer header.
    page.goto("/tokens")
    page.get_by_label("Name").fill("ci script")
    page.get_by_role("button", name="Make token").click()
    token = page.locator("[data-secret]").inner_text()
    assert token.startswith("flp_")
    listed = httpx.get(
        console_stack.base_url + "/api/v1/devices", headers={"Authorization": f"Bearer {token}"}
    )
    assert listed.status_code == 200
    assert {d["name"] for d in listed.json()} == {"Greenhouse 1", "Weather mast"}


PAGES = {
    "devices": "/devices",
    "device": "/devices/{greenhouse}?range=1d",
    "rules": "/rules",
    "rule-form": "/rules/new?device_id={greenhouse}",
    "alerts": "/alerts",
    "tokens": "/tokens",
    "confirm-rotate": "/devices/{greenhouse}/rotate",
    "device-new": "/devices/new",
}


@pytest.fixture(scope="module")
def updates(console_stack):
    """OTA updates under way (test_rollout_pages.rollout_scene), for the screenshots."""
    with rollout_scene(console_stack) as scene:
        yield scene


def _fits_a_phone(page: Page, name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide at 360 px"


def _update_screenshots(page: Page, folder: Path, size: str, greenhouse: str, scene) -> int:
    """The rollouts list, a rolling rollout, the start form, the bundles, the device
    page's Update section (the greenhouse downloading); how many were taken."""
    rollout = scene["rollout"]
    shots = {
        "rollout-list": "/rollouts",
        "rollout": f"/rollouts/{rollout['id']}",
        "rollout-new": f"/rollouts/new?device_id={greenhouse}",
        "rollout-bundles": "/bundles",
    }
    for name, path in shots.items():
        page.goto(path)
        page.screenshot(path=folder / f"{name}-{size}.png", full_page=True)
        if size == "phone":
            _fits_a_phone(page, name)
    page.goto(f"/rollouts/{rollout['id']}")
    expect(page.locator("[data-rollout-state]").first).to_have_text("rolling")
    expect(page.locator("tr[data-device] [data-ota-state=rolled_back]")).to_have_count(1)
    expect(page.locator("tr[data-device] progress")).to_have_count(1)
    expect(page.get_by_role("link", name="Cancel rollout…")).to_be_visible()
    page.goto(f"/devices/{greenhouse}")
    update = page.locator("section:has(#update-h)")
    expect(update.locator("[data-ota-state]")).to_have_text("downloading")
    expect(update.locator("[data-progress]")).to_have_text("60 %")
    update.screenshot(path=folder / f"device-update-{size}.png")
    if size == "phone":
        _fits_a_phone(page, "the device page with its update")
    return len(shots) + 1


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_5_screenshots_and_phone_width(browser, console_stack, updates, size):
    # The laptop's console at the top; the operator's stores in a folder of their own.
    folder = SCREENSHOTS if console_stack.kind == "embedded" else SCREENSHOTS / console_stack.kind
    folder.mkdir(parents=True, exist_ok=True)
    viewport = DESKTOP if size == "desktop" else PHONE
    page = open_page(browser, console_stack, viewport)
    try:
        page.goto("/login")
        page.screenshot(path=folder / f"login-{size}.png", full_page=True)
        sign_in(page, console_stack.ada)
        greenhouse = console_stack.ada.devices["Greenhouse 1"]["id"]
        for name, path in PAGES.items():
            page.goto(path.format(greenhouse=greenhouse))
            if page.locator("[data-width-from]").count():
                page.wait_for_selector("#live[data-updated]")
            page.screenshot(path=folder / f"{name}-{size}.png", full_page=True)
            if size == "phone":  # readable at 360 px: nothing makes the page scroll sideways
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{name} is {width} px wide at 360 px"
        updates_shot = _update_screenshots(page, folder, size, greenhouse, updates)
        # The rule form with its 7-day preview filled in by the page's script.
        page.goto(f"/rules/new?device_id={greenhouse}")
        page.get_by_label("Name").fill("Too hot")
        page.get_by_label("Value").fill("temperature")
        page.get_by_label("Critical at").fill("25")
        page.get_by_label("Recipients").fill("ops@example.com")
        page.wait_for_selector("[data-preview-count]")
        page.screenshot(path=folder / f"rule-preview-{size}.png", full_page=True)
        # A chart's readout: the value under the pointer.
        page.goto(PAGES["device"].format(greenhouse=greenhouse))
        page.wait_for_selector("#live[data-updated]")
        plot = page.locator("figure.chart[data-field=temperature] svg.plot")
        plot.hover(position={"x": plot.bounding_box()["width"] * 0.6, "y": 80})
        expect(page.locator("figure.chart[data-field=temperature] [data-readout]")).to_contain_text(
            " at "
        )
        page.screenshot(path=folder / f"device-pointer-{size}.png", full_page=True)
        # Fleet management on the device page: a config sent, a command answered by the
        # device (over MQTT, as the SDK answers), each section on its own.
        page.get_by_label("Interval (seconds, 1-86400)").fill("30")
        page.get_by_role("button", name="Send configuration").click()
        expect(page.locator("#config-h")).to_be_visible()
        config = page.locator("section:has(#config-h)")
        expect(config.get_by_role("strong")).to_have_text("pending")
        config.screenshot(path=folder / f"device-config-{size}.png")
        page.get_by_label("Command (built in").fill("ping")
        page.get_by_role("button", name="Send command").click()
        commands = page.locator("section:has(#commands-h)")
        expect(commands.get_by_role("cell", name="pending").first).to_be_visible()
        commands.screenshot(path=folder / f"device-commands-{size}.png")
        if size == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"the device page is {width} px wide at 360 px"
        # Adding a device: the page with its credentials and config.json (removed after).
        page.goto("/devices/new")
        page.get_by_label("Name").fill(f"Screenshot {size}")
        page.get_by_label("Tags").fill("room=hall")
        page.get_by_role("button", name="Add device").click()
        expect(page.get_by_role("heading", name=f"Screenshot {size} is registered")).to_be_visible()
        config = json.loads(page.locator("[data-config-json]").input_value())
        console_stack.ada.api.delete(f"/api/v1/devices/{config['device_id']}").raise_for_status()
        page.screenshot(path=folder / f"device-created-{size}.png", full_page=True)
        if size == "phone":
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"device-created is {width} px wide at 360 px"
    finally:
        page.context.close()
    assert len(list(folder.glob(f"*-{size}.png"))) == len(PAGES) + 6 + updates_shot


def test_6_rollout_page_and_update_section_follow_the_devices_reports(
    ada_page, console_stack, updates
):
    page = ada_page
    rollout = updates["rollout"]
    (moving,) = [d["device_id"] for d in rollout["devices"] if d["state"] == "downloading"]
    page.goto(f"/rollouts/{rollout['id']}")
    page.evaluate("window.__sameDocument = true")
    step(console_stack, rollout, moving, "downloading", progress=80)
    row = page.locator(f"tr[data-device={moving}]")
    expect(row.locator("[data-progress]")).to_have_text("80 %", timeout=LIVE_TIMEOUT_MS)
    step(console_stack, rollout, moving, "rebooting")
    expect(row.locator("[data-ota-state]")).to_have_text("rebooting", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    # The device page's Update section, while the greenhouse downloads.
    greenhouse = console_stack.ada.devices["Greenhouse 1"]["id"]
    page.goto(f"/devices/{greenhouse}")
    page.evaluate("window.__sameDocument = true")
    step(console_stack, updates["greenhouse_rollout"], greenhouse, "downloading", progress=90)
    section = page.locator("#update")
    expect(section.locator("[data-progress]")).to_have_text("90 %", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
