"""What every `fieldline` command shares: the error a person can act on, the common
options, and settings built from them.

Service packages add commands (`<service>/commands.py`, listed in cli.py) with these;
they never import cli.py, which sits above them.
"""

from __future__ import annotations

import argparse

from fieldline_backend.common.settings import Settings, load_settings


class CommandError(Exception):
    """An error a person can act on; printed without a traceback."""


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="where the embedded defaults keep their files "
        "(default: $FIELDLINE_DATA_DIR, else a per-user data folder)",
    )


def add_ports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http-port", type=int, help="HTTP API port (default 8000)")
    parser.add_argument("--http-host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--mqtt-port", type=int, help="embedded MQTT broker port (default 1883)")


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        data_dir=getattr(args, "data_dir", None),
        http_port=getattr(args, "http_port", None),
        http_host=getattr(args, "http_host", None),
        mqtt_port=getattr(args, "mqtt_port", None),
    )
