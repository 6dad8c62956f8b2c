"""`provision flash`: from a board on a serial port to a device sending readings.

Steps, in the order that leaves the least behind when one fails (before them, the API is
asked once whether it answers, takes the token and knows --device-id):
  1. --firmware: erase and write MicroPython (esptool);
  2. reach MicroPython's raw REPL and, with --wifi-ssid, check that the board sees that
     network (both fail before anything is created);
  3. upload the SDK and the app, only files whose hash differs on the board;
  4. create the device through the API, or rotate the credentials of --device-id;
  5. write config.json (atomically; its content, holding the credentials, is never printed);
  6. reset the board and wait until the backend says online, then print the first reading.
A failure in 5 deletes a device created in 4; a failure in 6 keeps it and prints its id
and how to retry with --device-id.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from fieldline_provision import device_config
from fieldline_provision.api_client import FieldlineApi
from fieldline_provision.board_files import (
    CONFIG_PATH,
    BoardFile,
    UploadReport,
    firmware_files,
    upload_changed,
)
from fieldline_provision.board_link import BoardLink
from fieldline_provision.boot_diagnosis import diagnose
from fieldline_provision.bytecode import files_for_board
from fieldline_provision.device_config import SensorSpec
from fieldline_provision.errors import DeviceNotOnline, ProvisionError, UsageError

Say = Callable[[str], None]
OpenLink = Callable[..., BoardLink]  # (port, answer_timeout=...) -> an opened link


@dataclass
class FlashOptions:
    port: str
    sensors: list[SensorSpec]
    name: str | None = None
    wifi_ssid: str = ""
    wifi_password: str = ""
    interval_s: float = device_config.DEFAULT_INTERVAL_S
    firmware: Path | None = None
    chip: str = "auto"
    device_id: str | None = None
    online_timeout_s: float = 90.0
    ca_pem: str | None = None
    scan_wifi: bool = True
    replace: bool = False  # --name of an existing device: reflash that one


@dataclass
class FlashResult:
    device_id: str
    created: bool
    upload: UploadReport
    config_bytes: int
    first_reading: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def bytes_uploaded(self) -> int:
        return self.upload.bytes_uploaded + self.config_bytes


class Redactor:
    """Masks secrets in anything echoed from the board (a debug print must not leak them)."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    def add(self, *values: str) -> None:
        self.secrets += [v for v in values if v and len(v) >= 4]

    def __call__(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "***")
        return text


def validate_options(options: FlashOptions) -> None:
    """Everything checkable before touching the board or the API."""
    placeholder = {
        "host": "h",
        "port": 1,
        "client_id": "c",
        "username": "u",
        "password": "p",
    }
    device_config.build_config(
        "dev-check",
        placeholder,
        options.sensors,
        options.wifi_ssid,
        options.wifi_password,
        options.interval_s,
    )


def _same_name(options: FlashOptions, devices: list[dict], say: Say) -> FlashOptions:
    """A second device with the name of one that exists is almost always a reflash gone
    wrong: the old device would stay enabled with working credentials. Refuse, or with
    --replace reflash that device (its credentials rotated)."""
    if not options.name:
        return options
    same = [d for d in devices if d.get("name") == options.name]
    if not same:
        return options
    ids = ", ".join(d["id"] for d in same)
    if not options.replace:
        raise UsageError(
            f"a device named {options.name!r} exists ({ids}): reflash it with "
            f"--device-id {same[0]['id']} (or --replace), or pick another --name"
        )
    if len(same) > 1:
        raise UsageError(
            f"{len(same)} devices are named {options.name!r} ({ids}): say which with --device-id"
        )
    say(f"      --replace: reflashing device {same[0]['id']} named {options.name!r}")
    return replace(options, device_id=same[0]["id"])


def flash_board(
    options: FlashOptions,
    api: FieldlineApi,
    open_link: OpenLink,
    say: Say = print,
    files: list[BoardFile] | None = None,
) -> FlashResult:
    started = time.monotonic()
    validate_options(options)
    files = firmware_files() if files is None else files
    # The API answers and takes the token (and --device-id exists) before the board is
    # touched: a wrong address or an expired token costs nothing.
    if options.device_id:
        api.get_device(options.device_id)
    else:
        options = _same_name(options, api.list_devices(), say)

    if options.firmware:
        from fieldline_provision.firmware import firmware_plan, write_firmware

        plan = firmware_plan(options.port, options.firmware, options.chip)
        say(f"[1/6] writing MicroPython {plan.image.name} to {options.port} (esptool)")
        write_firmware(plan, say=say)
    else:
        say("[1/6] MicroPython firmware: kept (give --firmware to write it)")

    say(f"[2/6] reaching MicroPython on {options.port}")
    # Freshly written MicroPython makes its filesystem on first boot: give it longer.
    link = (
        open_link(options.port, answer_timeout=30.0)
        if options.firmware
        else open_link(options.port)
    )
    try:
        return _provision(options, api, link, say, files, started)
    finally:
        link.close()


def _provision(
    options: FlashOptions,
    api: FieldlineApi,
    link: BoardLink,
    say: Say,
    files: list[BoardFile],
    started: float,
) -> FlashResult:
    if options.wifi_ssid and options.scan_wifi:
        from fieldline_provision.wifi_check import check_wifi_network

        say(f"      looking for Wi-Fi network {options.wifi_ssid!r} from the board")
        check_wifi_network(link, options.wifi_ssid)
    # The app was interrupted, not ended: its objects fill the heap the upload needs.
    link.fresh_raw_repl()
    bytecode = files_for_board(link, files)
    say(f"[3/6] uploading the SDK (lib/fieldline/) and the firmware app, {bytecode.note}")
    upload = upload_changed(link, bytecode.files, say)
    link.remove_files(bytecode.stale)  # a .py left beside its .mpy would be imported instead

    created = options.device_id is None
    if created:
        name = options.name or f"board-{secrets.token_hex(3)}"
        say(f"[4/6] creating device {name!r}")
        device = api.create_device(name)
        device_id = device["id"]
        mqtt = device["mqtt"]
    else:
        device_id = options.device_id
        say(f"[4/6] rotating the credentials of device {device_id}")
        mqtt = api.rotate_credentials(device_id)["mqtt"]
    redact = Redactor()
    redact.add(mqtt.get("password", ""), options.wifi_password)

    try:
        config = device_config.build_config(
            device_id,
            mqtt,
            options.sensors,
            options.wifi_ssid,
            options.wifi_password,
            options.interval_s,
            options.ca_pem,
        )
        version = _desired_version(api, device_id, config, say)
        if version:
            config["config_version"] = version
        payload = device_config.encode(config)
        say(f"[5/6] writing {CONFIG_PATH} ({len(payload)} bytes, credentials not shown)")
        link.put_file(CONFIG_PATH, payload)
    except ProvisionError as error:
        raise _after_device_failure(error, api, device_id, created, options) from None

    say("[6/6] resetting the board; waiting for the backend to see the device")
    try:
        reading = _wait_online(options, api, link, device_id, say, redact)
    except KeyboardInterrupt:
        say(f"interrupted: device {device_id} is on the board; {retry_hint(options, device_id)}")
        raise
    except ProvisionError as error:
        raise extended(
            error, f"device {device_id} is kept; {retry_hint(options, device_id)}"
        ) from None
    return FlashResult(
        device_id=device_id,
        created=created,
        upload=upload,
        config_bytes=len(payload),
        first_reading=reading,
        seconds=time.monotonic() - started,
    )


def _desired_version(api: FieldlineApi, device_id: str, config: dict, say: Say) -> int | None:
    """The server keeps the board's interval and sensors as the device's desired config
    (the console shows and changes the same, docs/fleet.md): the version goes into
    config.json, so the board ignores a remote config older than this flash. A server
    that does not keep configs, or refuses now, leaves the board on config.json alone."""
    change = {"interval_s": config["interval_s"], "sensors": config["sensors"]}
    try:
        answer = api.put_config(device_id, change)
    except ProvisionError as error:
        say(f"      the server did not store the config ({error}); the board uses config.json")
        return None
    version = int(answer["desired"]["version"])
    say(f"      desired config version {version} stored on the server")
    return version


def retry_hint(options: FlashOptions, device_id: str) -> str:
    return f"retry with `provision flash --port {options.port} --device-id {device_id} ...`"


def _after_device_failure(
    error: ProvisionError, api: FieldlineApi, device_id: str, created: bool, options: FlashOptions
) -> ProvisionError:
    if created:
        try:
            api.delete_device(device_id)
            return extended(error, f"device {device_id} was deleted again; nothing is left")
        except ProvisionError:
            pass
    return extended(error, f"device {device_id} exists; {retry_hint(options, device_id)}")


def extended(error: ProvisionError, more: str) -> ProvisionError:
    """The same error (same class, same exit code) with what happened to the device."""
    error.args = (f"{error} -- {more}",)
    return error


def _wait_online(
    options: FlashOptions,
    api: FieldlineApi,
    link: BoardLink,
    device_id: str,
    say: Say,
    redact: Redactor,
) -> dict:
    link.reset()
    deadline = time.monotonic() + options.online_timeout_s
    console = ""
    online = False
    fields = sorted({v for s in options.sensors for v in s.value_names()})
    next_poll = 0.0
    while time.monotonic() < deadline:
        text = link.read_console(0.3).decode("utf-8", "replace")
        if text:
            console += text
            for line in redact(text).splitlines():
                if line.strip():
                    say(f"  board| {line.rstrip()}")
        if time.monotonic() < next_poll:
            continue
        next_poll = time.monotonic() + 1.0
        if not online and is_online(api.device_status(device_id)):
            online = True
            say(f"device {device_id} is online; waiting for its first reading")
        # A reading proves the device is on even if its status message is still in flight.
        reading = first_reading(api.telemetry(device_id, fields))
        if reading:
            return reading
    waited = options.online_timeout_s
    if online:
        raise DeviceNotOnline(
            f"device {device_id} came online but sent no reading in {waited:.0f} s: "
            "check its sensors with `provision monitor`"
        )
    raise diagnose(redact(console), options.wifi_ssid, waited)


def is_online(status: dict) -> bool:
    # The contract's {"online": true} and the storage service's {"status": "online"}.
    return status.get("online") is True or status.get("status") == "online"


def first_reading(telemetry: dict) -> dict:
    """{name: (ts_ms, value)} of the newest point per field; {} when there is none."""
    reading = {}
    for name, points in (telemetry.get("fields") or {}).items():
        if points:
            ts, value = max(points, key=lambda p: p[0])
            reading[name] = (ts, value)
    return reading


def describe_reading(reading: dict) -> str:
    values = ", ".join(f"{name}={value}" for name, (_, value) in sorted(reading.items()))
    newest = max(ts for ts, _ in reading.values())
    stamp = datetime.fromtimestamp(newest / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{values} (at {stamp})"
