"""`provision bundle` and `fieldline bundle` (the same options, the same code): build an
OTA update bundle of the installed SDK and firmware app (docs/ota.md), write it to a
file and, with --upload, store it on the server for a rollout."""

from __future__ import annotations

import argparse
from pathlib import Path

from fieldline_provision.bundle import build_bundle
from fieldline_provision.errors import ProvisionError

EXAMPLES = """\
examples:
  {prog} bundle                           .mpy for the bytecode mpy-cross emits, this version
  {prog} bundle --version 0.2.0 --mpy none -o app-0.2.0.tar    source (virtual devices)
  {prog} bundle --mpy 6.3 --upload        build and store it on the server (saved login)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--version",
        help="the bundle's version (default: the installed Fieldline's); boards take "
        "only a version above theirs unless the rollout allows a downgrade",
    )
    parser.add_argument(
        "--mpy",
        default="auto",
        help="auto (what mpy-cross emits, the default), none (source: larger, compiled on "
        "the board at import), or a bytecode version like 6.3",
    )
    parser.add_argument(
        "-o", "--output", help="the file to write (default: fieldline-<version>.tar)"
    )


def write_bundle(args: argparse.Namespace) -> tuple[bytes, dict]:
    """Build, write, say what was written; returns the tar and a summary."""
    bundle, note = build_bundle(args.version, args.mpy)
    path = Path(args.output or f"fieldline-{bundle.version}.tar")
    data = bundle.to_tar()
    try:
        path.write_bytes(data)
    except OSError as error:
        raise ProvisionError(f"cannot write {path}: {error.strerror}") from None
    print(
        f"wrote {path}: version {bundle.version}, {len(bundle.files)} files {note}, "
        f"{len(data)} bytes, bundle id {bundle.id}"
    )
    return data, {"id": bundle.id, "version": bundle.version}


def cmd_bundle(args: argparse.Namespace, runtime) -> int:
    data, _ = write_bundle(args)
    if args.upload:
        with runtime.api() as api:
            stored = api.upload_bundle(data)
        print(f"stored on the server as bundle {stored['id']} (version {stored['version']})")
    return 0
