"""`fieldline deadletters list|replay`: what storage could not store, and why."""

from __future__ import annotations

import argparse
import json

from fieldline_backend.infra.queue import QueueUnavailable, open_dead_letters

EPILOG = """\
examples:
  fieldline deadletters list                 the first 20 dead letters with their reasons
  fieldline deadletters list --limit 100 --json
  fieldline deadletters replay               send every dead letter back to storage
  fieldline deadletters replay --limit 10    (after fixing the cause, e.g. registering
                                             the device or changing a field's type)
"""


def _preview(body: bytes, width: int = 80) -> str:
    text = body.decode("utf-8", errors="replace").replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_list(args: argparse.Namespace) -> int:
    from fieldline_backend.common.commands import CommandError, settings_from

    try:
        letters = open_dead_letters(settings_from(args)).list(args.limit)
    except QueueUnavailable as error:
        raise CommandError(f"{error}; is the queue running?") from error
    if args.json:
        for letter in letters:
            record = {
                "id": letter.id,
                "reason": letter.reason,
                "headers": {k: str(v) for k, v in letter.headers.items()},
                "payload": letter.body.decode("utf-8", errors="replace"),
            }
            print(json.dumps(record))
        return 0
    if not letters:
        print("no dead letters")
        return 0
    for letter in letters:
        print(f"#{letter.id} {letter.headers.get('topic', '?')}: {letter.reason}")
        print(f"    {_preview(letter.body)}")
    print(f"{len(letters)} shown (--limit {args.limit})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from fieldline_backend.common.commands import CommandError, settings_from

    try:
        count = open_dead_letters(settings_from(args)).replay(args.limit)
    except QueueUnavailable as error:
        raise CommandError(f"{error}; is the queue running?") from error
    print(f"replayed {count} dead letter(s) into telemetry.storage")
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "deadletters",
        help="list or replay telemetry that could not be stored",
        description="Telemetry storage could not store (invalid payload, unknown device, "
        "refused by the store) waits in telemetry.dead with its reason.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="deadletters_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list",
        help="show dead letters with their reasons",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--data-dir", help="data dir of the embedded queue")
    listing.set_defaults(handler=cmd_list)
    replay = actions.add_parser(
        "replay",
        help="send dead letters back to storage",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--limit", type=int, default=None, help="at most this many")
    replay.add_argument("--data-dir", help="data dir of the embedded queue")
    replay.set_defaults(handler=cmd_replay)
