"""The `provision` command: thin wrappers over functions the tests call directly.

`main(argv=None, link=None)`: a caller (a test) may inject a connected BoardLink, used for
whatever port the command names. EXIT_CODES is the one place errors become exit codes;
every error is printed as one line.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence

from fieldline_provision import device_config, login_store
from fieldline_provision.api_client import FieldlineApi
from fieldline_provision.board_link import BoardLink, SerialBoardLink
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


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Runtime:
    """What a command needs from outside: the board link and the API."""

    def __init__(self, args: argparse.Namespace, link: BoardLink | None) -> None:
        self.args = args
        self.injected_link = link

    def open_link(self, port: str, answer_timeout: float = 8.0) -> BoardLink:
        if self.injected_link is not None:
            return _Borrowed(self.injected_link)
        return SerialBoardLink.open(port, answer_timeout=answer_timeout)

    def attach_link(self, port: str) -> BoardLink:
        if self.injected_link is not None:
            return _Borrowed(self.injected_link)
        return SerialBoardLink.attach(port)

    def api(self) -> FieldlineApi:
        url = getattr(self.args, "api", None) or os.environ.get("FIELDLINE_API_URL")
        token = getattr(self.args, "token", None) or os.environ.get("FIELDLINE_API_TOKEN")
        saved = login_store.load()
        if saved and not url:
            url = saved.api_url
        if saved and not token and url == saved.api_url:
            token = saved.token
        if not url or not token:
            raise NotLoggedIn()
        return FieldlineApi(url, token)


class _Borrowed:
    """An injected link: used like an opened one, but closing it is the owner's job."""

    def __init__(self, link: BoardLink) -> None:
        self._link = link

    def __getattr__(self, name):
        return getattr(self._link, name)

    def close(self) -> None:
        pass


# ---- login / logout ------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, rt: Runtime) -> int:
    saved = login_store.load()
    url = args.api or (saved.api_url if saved else None)
    if not url:
        raise UsageError("give the API address: provision login --api https://host")
    if args.token:
        token = args.token
    else:
        username = args.username or input("user: ")
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("password: ")
        with FieldlineApi(url) as anonymous:
            access = anonymous.password_login(username, password)
        with FieldlineApi(url, access) as api:
            token = api.create_personal_token(f"provision@{socket.gethostname()}")
    with FieldlineApi(url, token) as api:
        api.list_devices()  # the token works: fail now, not during a flash
    path = login_store.save(login_store.SavedLogin(url, token))
    print(f"logged in to {url}; token saved in {path} (readable by you only)")
    return 0


def cmd_logout(args: argparse.Namespace, rt: Runtime) -> int:
    if login_store.forget():
        print("logged out; the saved token was removed (revoke it in the web UI if it leaked)")
    else:
        print("not logged in; nothing to remove")
    return 0


# ---- ports -----------------------------------------------------------------------------------


def cmd_ports(args: argparse.Namespace, rt: Runtime) -> int:
    from fieldline_provision.ports import probe_micropython, serial_ports

    ports = serial_ports(extra=args.port or [])
    if not ports:
        print("no serial ports found: plug the board in with a data cable")
        return 0
    for port in ports:
        should_probe = not args.no_probe and (port.likely_board or port.device in (args.port or []))
        if should_probe:
            port.micropython = probe_micropython(port.device, rt.open_link)
        mark = "board?" if port.likely_board else "      "
        answer = {True: "MicroPython answers", False: "no MicroPython", None: "not probed"}
        bridge = port.bridge or port.description
        print(f"{mark} {port.device:<16} {port.usb_id:<10} {bridge:<24} {answer[port.micropython]}")
    return 0


# ---- flash -------------------------------------------------------------------------------------


def _resolve_port(args: argparse.Namespace) -> str:
    if args.port:
        return args.port
    from fieldline_provision.ports import choose_board_port, serial_ports

    port = choose_board_port(serial_ports())
    stderr(f"using the one board found: {port}")
    return port


def cmd_flash(args: argparse.Namespace, rt: Runtime) -> int:
    from pathlib import Path

    from fieldline_provision.flash import FlashOptions, describe_reading, flash_board

    sensors = [device_config.parse_sensor_spec(spec) for spec in args.sensor or []]
    if not sensors:
        raise UsageError("give at least one --sensor, e.g. --sensor simulated or --sensor dht22:4")
    wifi_password = sys.stdin.readline().rstrip("\r\n") if args.wifi_password_stdin else ""
    ca_pem = Path(args.ca).read_text() if args.ca else None
    options = FlashOptions(
        port=_resolve_port(args),
        sensors=sensors,
        name=args.name,
        wifi_ssid=args.wifi_ssid or "",
        wifi_password=wifi_password,
        interval_s=args.interval,
        firmware=Path(args.firmware) if args.firmware else None,
        chip=args.chip,
        device_id=args.device_id,
        online_timeout_s=args.timeout,
        ca_pem=ca_pem,
        scan_wifi=not args.no_wifi_scan,
    )
    with rt.api() as api:
        result = flash_board(options, api, rt.open_link, say=stderr)
    verb = "created" if result.created else "reflashed"
    print(f"device {result.device_id} {verb} and online")
    print(f"first reading: {describe_reading(result.first_reading)}")
    print(
        f"uploaded {len(result.upload.uploaded)} files + config "
        f"({result.bytes_uploaded} bytes) in {result.seconds:.1f} s"
    )
    return 0


# ---- device ------------------------------------------------------------------------------------


def cmd_device_list(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.api() as api:
        devices = api.list_devices()
    if not devices:
        print("no devices yet: provision flash --port PORT --sensor simulated")
        return 0
    for device in devices:
        state = "enabled" if device.get("enabled", True) else "disabled"
        print(f"{device['id']:<24} {device.get('name', ''):<24} {state}")
    return 0


def last_seen(status: dict) -> str:
    seen = status.get("last_seen")
    if isinstance(seen, int | float) and seen > 0:
        from datetime import UTC, datetime

        return datetime.fromtimestamp(seen / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(seen) if seen else "never"


def cmd_device_show(args: argparse.Namespace, rt: Runtime) -> int:
    from fieldline_provision.flash import is_online

    with rt.api() as api:
        device = api.get_device(args.device_id)
        status = api.device_status(args.device_id)
    for key in ("id", "name", "enabled", "created_at", "updated_at"):
        if key in device:
            print(f"{key + ':':<12} {device[key]}")
    metadata = device.get("metadata") or {}
    print(f"{'metadata:':<12} {', '.join(f'{k}={v}' for k, v in metadata.items()) or '-'}")
    print(f"{'online:':<12} {is_online(status)}  (last seen {last_seen(status)})")
    return 0


def cmd_device_rotate(args: argparse.Namespace, rt: Runtime) -> int:
    with rt.api() as api:
        api.get_device(args.device_id)
        mqtt = api.rotate_credentials(args.device_id)["mqtt"]
    if not args.port:
        print(
            f"rotated the MQTT password of {args.device_id}; the board keeps the old one until "
            f"you run `provision flash --port PORT --device-id {args.device_id} ...` "
            "(or give --port now)"
        )
        return 0
    import json

    link = rt.open_link(args.port)
    try:
        current = link.read_file("config.json")
        config = json.loads(current) if current else None
        if not isinstance(config, dict) or config.get("device_id") != args.device_id:
            raise UsageError(
                f"the board on {args.port} is not configured as {args.device_id}: "
                f"use `provision flash --port {args.port} --device-id {args.device_id} ...`"
            )
        config["mqtt"].update(
            {k: mqtt[k] for k in ("username", "password", "client_id") if k in mqtt}
        )
        link.put_file("config.json", device_config.encode(config))
        link.reset()
    finally:
        link.close()
    print(f"rotated the MQTT password of {args.device_id} and wrote it to the board on {args.port}")
    return 0


def cmd_device_delete(args: argparse.Namespace, rt: Runtime) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("deleting needs --yes when not run from a terminal")
        answer = input(f"delete {args.device_id} and its broker account? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 0
    with rt.api() as api:
        api.delete_device(args.device_id)
    print(f"deleted {args.device_id}; its board can no longer connect")
    return 0


# ---- monitor / verify ------------------------------------------------------------------------


def console_text(data: bytes) -> str:
    """Board bytes as text: UTF-8 (broken bytes replaced), no control characters but newlines."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or ch >= " ")


def cmd_monitor(args: argparse.Namespace, rt: Runtime) -> int:
    link = rt.attach_link(args.port)
    stderr(f"console of {args.port} (Ctrl-C to stop)")
    try:
        if args.reset:
            link.reset()
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while deadline is None or time.monotonic() < deadline:
            data = link.read_console(0.2)
            if data:
                sys.stdout.write(console_text(data))
                sys.stdout.flush()
    finally:
        link.close()
    return 0


def cmd_verify(args: argparse.Namespace, rt: Runtime) -> int:
    import json

    from fieldline_provision.board_files import firmware_files

    link = rt.open_link(args.port)
    try:
        files = firmware_files()
        on_board = link.file_hashes([f.board_path for f in files] + ["config.json"])
        raw_config = link.read_file("config.json")
        if not args.no_reset:
            link.reset()
    finally:
        link.close()
    missing = [f.board_path for f in files if on_board.get(f.board_path) is None]
    differ = [f.board_path for f in files if on_board.get(f.board_path) not in (None, f.sha256)]
    problems = [f"missing: {path}" for path in missing] + [f"differs: {path}" for path in differ]
    if raw_config is None:
        problems.append("missing: config.json")
    else:
        try:
            problems += device_config.config_problems(json.loads(raw_config))
        except ValueError:
            problems.append("config.json is not valid JSON")
    print(f"{len(files) - len(missing) - len(differ)} of {len(files)} files match this version")
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(f"fix it with `provision flash --port {args.port} --device-id ID ...`")
        return 1
    print("config.json is complete")
    return 0


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
