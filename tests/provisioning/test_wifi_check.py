"""The Wi-Fi check before flashing, over a link that answers like a board would."""

from __future__ import annotations

import pytest

from fieldline_provision.errors import UsageError, WifiNetworkNotFound
from fieldline_provision.wifi_check import SCAN_CODE, check_wifi_network


class ScanningBoard:
    """A neighbour faked: answers only the scan, with what a board prints for it."""

    port = "/dev/ttyUSB9"

    def __init__(self, printed: bytes) -> None:
        self.printed = printed

    def exec(self, code: str) -> bytes:
        assert code == SCAN_CODE
        return self.printed


def test_a_visible_network_passes():
    check_wifi_network(ScanningBoard(b"[b'home', b'neighbour']\r\n"), "home")


def test_a_missing_network_is_named():
    with pytest.raises(WifiNetworkNotFound, match="'home'.*2.4 GHz"):
        check_wifi_network(ScanningBoard(b"[b'neighbour']\r\n"), "home")


def test_a_board_without_wifi_says_to_leave_the_ssid_out():
    with pytest.raises(UsageError, match="no Wi-Fi"):
        check_wifi_network(ScanningBoard(b"None\r\n"), "home")
