"""`provision login`, `logout` and `device list|show|rotate|delete`."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys

from fieldline_provision import device_config, login_store
from fieldline_provision.api_client import FieldlineApi
from fieldline_provision.errors import UsageError
from fieldline_provision.runtime import Runtime

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
