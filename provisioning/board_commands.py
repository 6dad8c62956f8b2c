"""`provision ports`, `flash`, `monitor` and `verify`: the commands that talk to a board."""

from __future__ import annotations

import argparse
import sys
import time

from fieldline_provision import device_config
from fieldline_provision.boot_diagnosis import MEMORY_FIX
from fieldline_provision.errors import UsageError
from fieldline_provision.runtime import Runtime, stderr

BOOT_ERROR_PATH = "boot_error.txt"  # device/main.py writes why the app could not start

# ---- ports -----------------------------------------------------------------------------------


def cmd_ports(args: argparse.Namespace, rt: Runtime) -> int:
    from fieldline_provision.ports import probe_micropython, serial_ports

    ports = serial_ports(extra=args.port or [])
    if not ports:
        print("no serial ports found: plug the board in with a data cable")
        return 0
    print(f"{'':6} {'PORT':<16} {'USB ID':<10} {'BRIDGE':<24} REPL")
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
        replace=args.replace,
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

    from fieldline_provision.bytecode import files_for_board

    link = rt.open_link(args.port)
    try:
        files = files_for_board(link).files  # as flash uploads them
        on_board = link.file_hashes([f.board_path for f in files] + ["config.json"])
        raw_config = link.read_file("config.json")
        boot_error = link.read_file(BOOT_ERROR_PATH)
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
    if boot_error:
        # main.py wrote it when the app could not start; the app removes it when it runs.
        cause = boot_error.decode("utf-8", "replace").strip()
        fix = MEMORY_FIX if "MemoryError" in cause else "see `provision monitor --port ...`"
        problems.append(f"the app's last start failed: {cause[:300]}; {fix}")
    print(f"{len(files) - len(missing) - len(differ)} of {len(files)} files match this version")
    for problem in problems:
        print(f"  {problem}")
    if problems:
        print(f"fix it with `provision flash --port {args.port} --device-id ID ...`")
        return 1
    print("config.json is complete")
    return 0
