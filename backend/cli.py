"""The `fieldline` command: thin wrappers over functions the tests call directly.

One table maps each command to its handler; `main()` is the one place that turns
errors into exit codes and messages that say what to do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fieldline_backend.common.commands import (
    CommandError,
    add_data_dir,
    add_ports,
    settings_from,
)
from fieldline_backend.common.settings import SERVICES
from fieldline_backend.ingestor import commands as ingestor_commands
from fieldline_backend.simulator import commands as simulator_commands
from fieldline_backend.storage import commands as storage_commands
from fieldline_provision.bundle_commands import EXAMPLES as BUNDLE_EXAMPLES
from fieldline_provision.bundle_commands import add_arguments as add_bundle_arguments

# Commands the services contribute (`<service>/commands.py`, each with `register`).
SERVICE_COMMANDS = (ingestor_commands, storage_commands, simulator_commands)


EXAMPLES = """\
examples:
  fieldline up                                  all services, embedded defaults
  fieldline up --data-dir ./data --http-port 8080 --mqtt-port 1884
  FIELDLINE_DATABASE_URL=postgresql://fieldline@db/fieldline fieldline serve devices
  echo 's3cret-pass' | fieldline users create --username admin --password-stdin --admin
"""


def cmd_up(args: argparse.Namespace) -> int:
    from fieldline_backend.runner import run_services

    settings = settings_from(args)
    run_services(settings, SERVICES, banner=True)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from fieldline_backend.runner import run_services

    run_services(settings_from(args), [args.service], banner=False)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database schema to the newest version (the deployment's one-shot step)."""
    from fieldline_backend.common.db import Database

    settings = settings_from(args)
    where = (settings.database_url or settings.sqlalchemy_url).split("@")[-1]
    print(f"migrating {where} ...", flush=True)
    database = Database(settings.sqlalchemy_url)
    try:
        database.migrate()
    except Exception as error:
        raise CommandError(
            f"migration failed: {error}; check FIELDLINE_DATABASE_URL and that the "
            "database accepts connections"
        ) from error
    finally:
        database.dispose()
    print("database schema is up to date")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from fieldline_backend.gateway.users import UserExists, create_user_in

    settings = settings_from(args)
    if not args.password_stdin:
        raise CommandError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_user_in(settings, args.username, password, admin=args.admin)
    except UserExists as error:
        raise CommandError(f"user {args.username!r} exists already; pick another name") from error
    except ValueError as error:
        raise CommandError(str(error)) from error
    role = "admin" if user.is_admin else "user"
    print(f"created {role} {user.username!r} (id {user.id})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fieldline",
        description="Fieldline: telemetry and alerting for ESP32 sensor fleets.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = commands.add_parser(
        "up",
        help="run every service in one process",
        description="Run every service in one process. Unset FIELDLINE_*_URL variables "
        "mean the embedded defaults: SQLite, in-process MQTT broker, local queue, "
        "SQLite time series and a maildir, all under --data-dir.",
        epilog="example:\n  fieldline up --data-dir ./data --http-port 8080",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_dir(up)
    add_ports(up)
    up.set_defaults(handler=cmd_up)

    serve = commands.add_parser(
        "serve",
        help="run one service alone",
        description="Run one service alone; the others are reached at FIELDLINE_<NAME>_URL.",
        epilog="example:\n"
        "  FIELDLINE_DATABASE_URL=postgresql://db/fieldline fieldline serve devices",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("service", choices=SERVICES)
    add_data_dir(serve)
    add_ports(serve)
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser(
        "migrate",
        help="bring the database schema up to date and exit",
        description="Run every service's migrations up to the newest version, then exit. "
        "Services also migrate at start; run this once before starting replicas.",
        epilog="example:\n  FIELDLINE_DATABASE_URL=postgresql://fieldline@db/fieldline "
        "fieldline migrate",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_dir(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    users = commands.add_parser("users", help="manage user accounts")
    user_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    create = user_commands.add_parser(
        "create",
        help="create a user in the configured database",
        epilog="example:\n  echo 's3cret-pass' | fieldline users create --username ada "
        "--password-stdin --admin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_dir(create)
    create.add_argument("--username", required=True)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.add_argument("--admin", action="store_true", help="may create other users")
    create.set_defaults(handler=cmd_users_create)

    bundle = commands.add_parser(
        "bundle",
        help="build an OTA update bundle of the installed SDK and app (docs/ota.md)",
        description="Build an OTA update bundle: the SDK and app files `provision flash` "
        "uploads, with a manifest of their SHA-256 and a version. Upload it with "
        "POST /api/v1/bundles, the console, or `provision bundle --upload`.",
        epilog=BUNDLE_EXAMPLES.format(prog="fieldline"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_bundle_arguments(bundle)
    bundle.set_defaults(handler=cmd_bundle)

    for module in SERVICE_COMMANDS:
        module.register(commands)
    return parser


def cmd_bundle(args: argparse.Namespace) -> int:
    from fieldline_provision.bundle_commands import write_bundle
    from fieldline_provision.errors import ProvisionError

    try:
        write_bundle(args)
    except ProvisionError as error:
        raise CommandError(str(error)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CommandError as error:
        print(f"fieldline: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
