"""The demo's account, devices and alert rules, made through the public API once and
found again on the next run (state in <data dir>/demo/, readable by the owner only).

- account.json: the demo user (an admin: it is the only person on this laptop), its
  password and a personal API token. A revoked token is replaced by signing in again.
- devices.json: each virtual device's id and MQTT password, as `provision` writes them
  into a board's config.json. A device deleted through the API is registered again.
- Two rules, found by name and brought back to the definition below on every run:
  a threshold on the greenhouse temperature and a deadman on every demo device. The
  deadman is disabled while the demo is stopped and enabled once every device has been
  heard, so restarting the demo does not mail that the devices were away meanwhile.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from fieldline_backend.common.settings import Settings
from fieldline_backend.simulator.api import SimulatorApi
from fieldline_backend.simulator.scenario import DemoTimeline, Profile
from fieldline_provision.errors import TokenRejected

DEMO_USER = "demo"
RECIPIENT = "you@localhost"
THRESHOLD_RULE = "greenhouse too hot"
DEADMAN_RULE = "demo device offline"


class DemoSetupError(Exception):
    """Something in the data dir stops the demo; the message says what to do."""


@dataclass(frozen=True)
class DemoDevice:
    id: str
    name: str
    mqtt_password: str


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    token: str


def demo_dir(settings: Settings) -> Path:
    return settings.data_dir / "demo"


def _write_private(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(data, f, indent=2)
    tmp.replace(path)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise DemoSetupError(f"{path} is damaged ({error}); delete it and start again") from None


# ---- the account ----------------------------------------------------------------------


def _new_token(base_url: str, username: str, password: str) -> str:
    with SimulatorApi(base_url) as anonymous:
        access = anonymous.password_login(username, password)
    with SimulatorApi(base_url, access) as signed_in:
        return signed_in.create_personal_token("fieldline demo")


def ensure_account(settings: Settings, base_url: str) -> DemoAccount:
    from fieldline_backend.gateway.users import UserExists, create_user_in

    path = demo_dir(settings) / "account.json"
    saved = _read(path)
    if saved is not None:
        account = DemoAccount(saved["username"], saved["password"], saved["token"])
        try:
            with SimulatorApi(base_url, account.token) as api:
                api.me()
            return account
        except TokenRejected:  # revoked or the user was changed: sign in again
            token = _new_token(base_url, account.username, account.password)
            account = DemoAccount(account.username, account.password, token)
    else:
        password = secrets.token_urlsafe(18)
        try:
            create_user_in(settings, DEMO_USER, password, admin=True)
        except UserExists:
            raise DemoSetupError(
                f"the database in {settings.data_dir} has a user {DEMO_USER!r} but {path} is "
                "missing; start the demo with another --data-dir (or delete this one)"
            ) from None
        token = _new_token(base_url, DEMO_USER, password)
        account = DemoAccount(DEMO_USER, password, token)
    _write_private(path, vars(account))
    return account


# ---- the devices ----------------------------------------------------------------------


def ensure_devices(settings: Settings, api: SimulatorApi, profiles: list[Profile]):
    """One registered device per profile, reusing those of earlier runs (by name)."""
    path = demo_dir(settings) / "devices.json"
    saved = {entry["name"]: entry for entry in (_read(path) or {}).get("devices", [])}
    registered = {device["id"] for device in api.devices_tagged("fleet", "demo")}
    devices = []
    for profile in profiles:
        entry = saved.get(profile.name)
        if entry is None or entry["id"] not in registered:
            created = api.create_device(profile.name, profile.metadata)
            entry = {
                "name": profile.name,
                "id": created["id"],
                "mqtt_password": created["mqtt"]["password"],
            }
            saved[profile.name] = entry
            # At once: a crash before the next device must not lose this password.
            _write_private(path, {"devices": list(saved.values())})
        devices.append(DemoDevice(entry["id"], entry["name"], entry["mqtt_password"]))
    return devices


# ---- the rules ------------------------------------------------------------------------


def rule_definitions(devices: list[DemoDevice], timeline: DemoTimeline) -> dict[str, dict]:
    greenhouse = devices[0]
    return {
        THRESHOLD_RULE: {
            "name": THRESHOLD_RULE,
            "device_id": greenhouse.id,
            "field": "temperature",
            "condition": "above",
            "crit": 30,
            "clear": 28,
            "for": f"{timeline.threshold_for_s:g}s",
            "recipients": [RECIPIENT],
            "repeat_every": None,
            "notify_on_recovery": True,
        },
        DEADMAN_RULE: {
            "name": DEADMAN_RULE,
            "kind": "deadman",
            "selector": {"fleet": "demo"},
            "for": f"{timeline.deadman_for_s:g}s",
            "recipients": [RECIPIENT],
            "repeat_every": None,
            "notify_on_recovery": True,
        },
    }


def ensure_rules(api: SimulatorApi, devices, timeline: DemoTimeline) -> dict[str, str]:
    """Both rules as defined above, disabled for now; returns {name: rule id}."""
    existing = {rule["name"]: rule for rule in api.alert_rules()}
    ids = {}
    for name, definition in rule_definitions(devices, timeline).items():
        body = {**definition, "enabled": False}
        if name in existing:
            ids[name] = existing[name]["id"]
            api.change_alert_rule(ids[name], body)
        else:
            ids[name] = api.create_alert_rule(body)["id"]
    return ids


def enable_rules(api: SimulatorApi, rule_ids: dict[str, str], enabled: bool = True) -> None:
    for rule_id in rule_ids.values():
        api.change_alert_rule(rule_id, {"enabled": enabled})


def wait_until_heard(api: SimulatorApi, devices, since_ms: int, timeout: float) -> list[str]:
    """Names of the devices with no stored reading since since_ms after timeout."""
    deadline = time.monotonic() + timeout
    missing = list(devices)
    while missing:
        missing = [d for d in missing if not api.points(d.id, "battery", since_ms)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return [device.name for device in missing]
