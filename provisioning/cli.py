"""The `provision` command: thin wrappers over functions the tests call directly.

`main(argv=None, link=None)`: a caller (a test) may inject a connected BoardLink, used for
whatever port the command names. EXIT_CODES is the one place errors become exit codes;
every error is printed as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from fieldline_provision import device_config
from fieldline_provision.account_commands import (
    cmd_device_delete,
    cmd_device_list,
    cmd_device_rotate,
    cmd_device_show,
    cmd_login,
    cmd_logout,
)
from fieldline_provision.board_commands import cmd_flash, cmd_monitor, cmd_ports, cmd_verify
from fieldline_provision.board_link import BoardLink
from fieldline_provision.bundle_commands import EXAMPLES as BUNDLE_EXAMPLES
from fieldline_provision.bundle_commands import add_arguments as add_bundle_arguments
from fieldline_provision.bundle_commands import cmd_bundle
from fieldline_provision.errors import (
    ApiRequestFailed,
    ApiUnreachable,
    BoardCommandFailed,
    BoardDisconnected,
    BoardFlashFull,
    BoardInBootloader,
    BoardNotAnswering,
    DeviceNotOnline,
    FirmwareWriteFailed,
    NoSuchPort,
    NotLoggedIn,
    NotMicroPython,
    PartialUpload,
    PortBusy,
    PortPermission,
    ProvisionError,
    TokenRejected,
    UsageError,
    WifiNetworkNotFound,
)
from fieldline_provision.runtime import Runtime

# The one table from failure to exit code (argparse's own usage errors are 2 as well).
EXIT_CODES: dict[type[ProvisionError], int] = {
    UsageError: 2,
    NoSuchPort: 3,
    PortBusy: 3,
    PortPermission: 3,
    BoardNotAnswering: 4,
    BoardInBootloader: 4,
    BoardDisconnected: 4,
    NotMicroPython: 5,
    BoardCommandFailed: 6,
    BoardFlashFull: 6,
    PartialUpload: 6,
    ApiUnreachable: 7,
    NotLoggedIn: 8,
    TokenRejected: 8,
    ApiRequestFailed: 9,
    WifiNetworkNotFound: 10,
    DeviceNotOnline: 11,
    FirmwareWriteFailed: 12,
}
EXIT_INTERRUPTED = 130


def exit_code_for(error: ProvisionError) -> int:
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


EXAMPLES = """\
examples:
  provision login --api https://fieldline.example.com
  provision ports
  provision flash --port /dev/ttyUSB0 --sensor simulated
  echo "$WIFI_PASSWORD" | provision flash --port /dev/ttyUSB0 --name greenhouse \\
      --wifi-ssid home --wifi-password-stdin --sensor dht22:4 --interval 30
  provision flash --port /dev/ttyUSB0 --firmware ESP32_GENERIC-v1.24.1.bin --sensor simulated
  provision flash --port /dev/ttyUSB0 --device-id dev-7k3q --sensor simulated  # same device
  provision device list
  provision monitor --port /dev/ttyUSB0
  provision verify --port /dev/ttyUSB0

exit codes: 2 usage, 3 serial port, 4 board not answering, 5 not MicroPython,
  6 board error, 7 API unreachable, 8 not logged in / token refused, 9 API refused,
  10 Wi-Fi network not found, 11 device not online, 12 firmware write failed
"""


# ---- the parser ----------------------------------------------------------------------------


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", help="API address (default: the saved login, $FIELDLINE_API_URL)")
    parser.add_argument(
        "--token", help="API token (default: the saved login, $FIELDLINE_API_TOKEN)"
    )


def _command(
    commands, name: str, handler: Callable, help: str, example: str, **kwargs
) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="example:\n  " + example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Put an ESP32 board on Fieldline over USB: register it, copy the SDK, "
        "the firmware app and its credentials, and watch it come online.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    login = _command(
        commands,
        "login",
        cmd_login,
        "save an API token for the next commands (asks for user and password)",
        "provision login --api https://fieldline.example.com",
    )
    login.add_argument("--api", help="the Fieldline server, e.g. https://fieldline.example.com")
    login.add_argument("--token", help="use this personal API token instead of a password")
    login.add_argument("--username", help="user name (asked when missing)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    _command(commands, "logout", cmd_logout, "forget the saved API token", "provision logout")

    ports = _command(
        commands,
        "ports",
        cmd_ports,
        "list serial ports, marking likely ESP32 boards and whether MicroPython answers",
        "provision ports            (probing interrupts a running app and soft-resets it)",
    )
    ports.add_argument("--no-probe", action="store_true", help="do not talk to the boards")
    ports.add_argument("--port", action="append", help="also list and probe this port (repeatable)")

    bundle = commands.add_parser(
        "bundle",
        help="build an OTA update bundle of the installed SDK and app (docs/ota.md)",
        description="Build an OTA update bundle: the SDK and app files provision flash "
        "uploads, with a manifest of their SHA-256 and a version.",
        epilog=BUNDLE_EXAMPLES.format(prog="provision"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bundle_arguments(bundle)
    bundle.add_argument(
        "--upload", action="store_true", help="also store it on the server (POST /api/v1/bundles)"
    )
    _api_options(bundle)
    bundle.set_defaults(handler=cmd_bundle)

    flash = _command(
        commands,
        "flash",
        cmd_flash,
        "register a board, upload the SDK, the app and its config, and wait until it is online",
        "provision flash --port /dev/ttyUSB0 --wifi-ssid home --wifi-password-stdin "
        "--sensor dht22:4 < wifi-password.txt",
    )
    flash.add_argument("--port", help="serial port (default: the one board plugged in)")
    flash.add_argument("--name", help="device name shown in the API (default: board-<random>)")
    flash.add_argument("--wifi-ssid", help="Wi-Fi network (empty: the host network, rig/unix port)")
    flash.add_argument(
        "--wifi-password-stdin", action="store_true", help="read the Wi-Fi password from stdin"
    )
    flash.add_argument(
        "--sensor",
        action="append",
        metavar="SPEC",
        help=device_config.SENSOR_SPEC_HELP + "; repeatable",
    )
    flash.add_argument(
        "--interval",
        type=float,
        default=device_config.DEFAULT_INTERVAL_S,
        help="seconds between readings (default 10)",
    )
    flash.add_argument(
        "--firmware", help="first erase the board and write this MicroPython .bin (esptool)"
    )
    flash.add_argument("--chip", default="auto", help="chip for --firmware (default: detected)")
    flash.add_argument(
        "--device-id",
        help="reflash an existing device: rotate its credentials instead of creating one",
    )
    flash.add_argument(
        "--replace",
        action="store_true",
        help="--name of an existing device: reflash that device (its credentials rotated) "
        "instead of refusing",
    )
    flash.add_argument(
        "--no-wifi-scan",
        action="store_true",
        help="do not check from the board that --wifi-ssid is visible (hidden networks)",
    )
    flash.add_argument("--ca", help="PEM file of the CA that signed the broker's certificate (TLS)")
    flash.add_argument(
        "--timeout",
        type=float,
        default=90.0,
        help="seconds to wait for the device to come online (default 90)",
    )
    _api_options(flash)

    device = commands.add_parser("device", help="list, show, rotate or delete devices")
    device_commands = device.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    listing = _command(
        device_commands, "list", cmd_device_list, "list your devices", "provision device list"
    )
    _api_options(listing)
    show = _command(
        device_commands,
        "show",
        cmd_device_show,
        "show one device and whether it is online",
        "provision device show dev-7k3q",
    )
    show.add_argument("device_id")
    _api_options(show)
    rotate = _command(
        device_commands,
        "rotate",
        cmd_device_rotate,
        "give a device a new MQTT password (and write it to its board with --port)",
        "provision device rotate dev-7k3q --port /dev/ttyUSB0",
    )
    rotate.add_argument("device_id")
    rotate.add_argument("--port", help="the device's board: its config.json gets the new password")
    _api_options(rotate)
    delete = _command(
        device_commands,
        "delete",
        cmd_device_delete,
        "delete a device and its broker account",
        "provision device delete dev-7k3q --yes",
    )
    delete.add_argument("device_id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _api_options(delete)

    monitor = _command(
        commands,
        "monitor",
        cmd_monitor,
        "show the board's console",
        "provision monitor --port /dev/ttyUSB0 --reset",
    )
    monitor.add_argument("--port", required=True)
    monitor.add_argument(
        "--reset", action="store_true", help="soft-reset the board first to watch it boot"
    )
    monitor.add_argument(
        "--seconds", type=float, help="stop after this many seconds (default: until Ctrl-C)"
    )

    verify = _command(
        commands,
        "verify",
        cmd_verify,
        "check that the board's files match this version and its config is complete",
        "provision verify --port /dev/ttyUSB0",
    )
    verify.add_argument("--port", required=True)
    verify.add_argument("--no-reset", action="store_true", help="leave the app stopped afterwards")
    return parser


def main(argv: Sequence[str] | None = None, link: BoardLink | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args, Runtime(args, link))
    except ProvisionError as error:
        print(f"provision: error: {error}", file=sys.stderr)
        return exit_code_for(error)
    except KeyboardInterrupt:
        print("provision: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
