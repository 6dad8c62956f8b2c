"""Before anything is created: can the board see the Wi-Fi network it is told to join?

A scan from the board itself is the honest check (2.4 GHz only, its antenna, its place);
a hidden network does not show up in a scan, hence --no-wifi-scan.
"""

from __future__ import annotations

from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import UsageError, WifiNetworkNotFound

SCAN_CODE = """\
try:
    import network
except ImportError:
    print('None')
else:
    _fl_w = network.WLAN(network.STA_IF)
    _fl_w.active(True)
    print(repr([n[0] for n in _fl_w.scan()]))
    del _fl_w
"""


def visible_networks(link: BoardLink) -> list[str] | None:
    """SSIDs the board sees, or None when it has no Wi-Fi (no `network` module)."""
    import ast

    found = ast.literal_eval(link.exec(SCAN_CODE).decode().strip())
    if found is None:
        return None
    return [ssid.decode("utf-8", "replace") if isinstance(ssid, bytes) else ssid for ssid in found]


def check_wifi_network(link: BoardLink, ssid: str) -> None:
    networks = visible_networks(link)
    if networks is None:
        raise UsageError(
            f"the board on {link.port} has no Wi-Fi (no `network` module): leave out "
            "--wifi-ssid (the unix port uses the host's network)"
        )
    if ssid not in networks:
        raise WifiNetworkNotFound(ssid)
