"""Every failure `provision` reports: one line that says what happened and what to do.

The CLI maps these classes to exit codes in one table (cli.EXIT_CODES); the library
raises them and never prints.
"""

from __future__ import annotations


class ProvisionError(Exception):
    """An error a person can act on; printed as one line without a traceback."""


class UsageError(ProvisionError):
    """The command line asks for something that cannot work (bad --sensor, two boards...)."""


# ---- the serial port --------------------------------------------------------------------


class NoSuchPort(ProvisionError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"no serial port {port}: check the cable (a data cable, not charge-only) and "
            "list the ports with `provision ports`"
        )


class PortBusy(ProvisionError):
    def __init__(self, port: str, holders: list[str]) -> None:
        verb = "have" if len(holders) > 1 else "has"
        who = f"{', '.join(holders)} {verb} it open" if holders else "another program has it open"
        super().__init__(
            f"serial port {port} is busy: {who}; close it (a serial monitor, another "
            "provision or mpremote) and try again"
        )


class PortPermission(ProvisionError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"no permission to open {port}: add yourself to its group "
            f"(`sudo usermod -aG dialout $USER`, then log in again)"
        )


# ---- the board ----------------------------------------------------------------------------


class BoardNotAnswering(ProvisionError):
    def __init__(self, port: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"the board on {port} does not answer{extra}: press EN (reset) and try again; "
            "if it still does not, hold BOOT while pressing EN and flash MicroPython "
            "with --firmware"
        )


class NotMicroPython(ProvisionError):
    def __init__(self, port: str, seen: str) -> None:
        super().__init__(
            f"the board on {port} answers but is not running MicroPython (it printed "
            f"{seen!r}): flash MicroPython first with `provision flash --port {port} "
            "--firmware micropython.bin`"
        )


class BoardInBootloader(ProvisionError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"the board on {port} is in its bootloader (download mode): press EN to start "
            "MicroPython, or give --firmware to write it"
        )


class BoardCommandFailed(ProvisionError):
    """Code sent to the board raised; carries the board's last traceback line."""


class BoardFlashFull(ProvisionError):
    def __init__(self, path: str) -> None:
        super().__init__(
            f"the board's flash is full while writing {path}: remove files you added "
            "(mpremote fs ls / rm) or erase it with --firmware"
        )


class BoardDisconnected(ProvisionError):
    def __init__(self, port: str) -> None:
        super().__init__(
            f"the board on {port} went away (unplugged or reset by its USB chip): "
            "plug it in and run the same command again"
        )


class PartialUpload(ProvisionError):
    """An upload stopped half-way; says which files are new and that a rerun finishes it."""


# ---- the API ------------------------------------------------------------------------------


class ApiUnreachable(ProvisionError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the Fieldline API at {url} ({reason}): is the server running? "
            "check the address with `provision login --api URL`"
        )


class NotLoggedIn(ProvisionError):
    def __init__(self) -> None:
        super().__init__(
            "not logged in: run `provision login --api URL` (or give --api and --token)"
        )


class TokenRejected(ProvisionError):
    def __init__(self, url: str) -> None:
        super().__init__(
            f"the API at {url} refused the token (expired or revoked): run `provision login` again"
        )


class ApiRequestFailed(ProvisionError):
    """The API answered with an error; carries its status and message."""


# ---- bringing the device online -------------------------------------------------------------


class WifiNetworkNotFound(ProvisionError):
    def __init__(self, ssid: str) -> None:
        super().__init__(
            f"the board did not find the Wi-Fi network {ssid!r}: check --wifi-ssid "
            "(ESP32 boards see 2.4 GHz networks only) and that the board is in range"
        )


class DeviceNotOnline(ProvisionError):
    """The board was provisioned but the backend never saw it; names the suspect step."""


class FirmwareWriteFailed(ProvisionError):
    """esptool could not erase or write MicroPython."""
