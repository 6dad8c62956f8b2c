"""After reset, the board's console names the step that kept the device offline."""

from __future__ import annotations

import pytest

from fieldline_provision.boot_diagnosis import diagnose
from fieldline_provision.errors import DeviceNotOnline, WifiNetworkNotFound


def test_wifi_network_not_found_is_its_own_error():
    error = diagnose("wifi: connecting to home\nwifi: STAT_NO_AP_FOUND\n", "home", 60)
    assert isinstance(error, WifiNetworkNotFound)
    assert "'home'" in str(error)


@pytest.mark.parametrize(
    ("console", "suspect"),
    [
        # What the SDK prints (sdk/fieldline/device.py), line for line:
        (
            "fieldline: retry in 1000 ms (attempt 1, Wi-Fi did not connect)\n",
            "suspect Wi-Fi",
        ),
        (
            "fieldline: connecting to 10.0.0.5:8883 (attempt 1)\n"
            "fieldline: broker refused the connection: not authorized; check "
            "mqtt.username and mqtt.password in config.json\n",
            "suspect credentials",
        ),
        (
            "fieldline: connecting to 10.0.0.5:8883 (attempt 1)\n"
            "fieldline: retry in 1000 ms (attempt 1, connect failed: OSError(113,))\n",
            "suspect broker",
        ),
        ("wifi: connecting to home\nwifi: AUTH_FAIL\n", "suspect Wi-Fi"),
        ("wifi: connecting to home\n", "suspect Wi-Fi"),
        (
            "mqtt: connecting to 10.0.0.5:8883\nOSError: [Errno 113] EHOSTUNREACH\n",
            "suspect broker",
        ),
        ("mqtt: CONNACK refused, code 5\n", "suspect credentials"),
        ("MQTTException: 5\n", "suspect credentials"),
        (
            "Traceback (most recent call last):\nImportError: no module named 'fieldline'\n",
            "crashed",
        ),
        ("", "printed nothing"),
        ("hello\n", "did not see the device"),
    ],
)
def test_the_suspect_step(console, suspect):
    error = diagnose(console, "home", 60)
    assert isinstance(error, DeviceNotOnline)
    assert suspect in str(error)
    assert "\n" not in str(error)
