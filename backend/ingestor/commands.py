"""`fieldline ingestor retire CLIENT_ID`: take an ingestor replica out for good.

Mosquitto keeps routing a share of the shared subscription's messages to a member whose
persistent session is offline, and hands them over only when that client id connects
again (measured on 2.0.11, docs/deploy.md). A replica that never comes back would
strand them. Retiring connects under the replica's client id, forwards everything its
session holds to the queue (PUBACK after the confirm, as the ingestor does), leaves the
shared subscription so nothing more is routed to it, waits until everything received is
confirmed and nothing more comes, and disconnects.
"""

from __future__ import annotations

import argparse
import time

EPILOG = """\
examples:
  fieldline ingestor retire fieldline-ingestor-3     after removing ingestor-3 for good
  fieldline ingestor retire fieldline-ingestor-3 --quiet-seconds 5

Run it with the same FIELDLINE_MQTT_URL and FIELDLINE_AMQP_URL as the ingestors, after
the replica's process has stopped (two connections under one client id take the session
from each other).
"""


def _settled(forwarder, publisher, quiet_seconds: float, last_change: list) -> bool:
    """Everything forwarded is confirmed, and nothing new arrived for quiet_seconds."""
    seen = (forwarder.forwarded, publisher.confirmed)
    if seen != last_change[0]:
        last_change[:] = [seen, time.monotonic()]
        return False
    return seen[0] == seen[1] and time.monotonic() - last_change[1] >= quiet_seconds


def cmd_retire(args: argparse.Namespace) -> int:
    from fieldline_backend.common.commands import CommandError, settings_from
    from fieldline_backend.infra.broker import backend_credentials
    from fieldline_backend.infra.queue.rabbitmq import RabbitPublisher
    from fieldline_backend.ingestor.forwarder import Forwarder

    settings = settings_from(args)
    if not settings.mqtt_url or not settings.amqp_url:
        raise CommandError(
            "retire works on Mosquitto and RabbitMQ: set FIELDLINE_MQTT_URL and "
            "FIELDLINE_AMQP_URL as for the ingestors"
        )
    publisher = RabbitPublisher(settings.amqp_url, quorum=settings.amqp_quorum)
    if not publisher.wait_ready(30):
        publisher.close()
        raise CommandError("RabbitMQ did not accept a connection within 30 s; is it running?")
    host, port = settings.broker_address
    username, password = backend_credentials(settings)
    forwarder = Forwarder(host, port, args.client_id, publisher, username, password)
    forwarder.start()
    try:
        if not forwarder.connected.wait(30):
            raise CommandError(f"the broker at {host}:{port} did not accept {args.client_id}")
        # Leave the share at once: from now on Mosquitto routes nothing more to this
        # session; what it queued while the replica was away is sent to us regardless
        # (and was already on its way: Mosquitto sends a session's queue on CONNACK).
        topics = [topic for topic, _ in forwarder.subscriptions]
        forwarder.client.unsubscribe(topics)
        print(f"connected as {args.client_id}; left {', '.join(topics)}", flush=True)
        last_change: list = [None, time.monotonic()]
        while not _settled(forwarder, publisher, args.quiet_seconds, last_change):
            time.sleep(0.2)
        time.sleep(0.5)  # the last PUBACKs leave on paho's network thread
    finally:
        forwarder.stopping = True
        forwarder.client.on_connect = None  # no re-subscribe on a reconnect from here on
        forwarder.stop()
        publisher.close()
    print(
        f"retired {args.client_id}: {forwarder.forwarded} message(s) forwarded to the queue, "
        "nothing more is routed to it"
    )
    return 0


def register(commands) -> None:
    parser = commands.add_parser(
        "ingestor",
        help="operate ingestor replicas",
        description="Operate ingestor replicas (Mosquitto shared subscription).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="ingestor_command", metavar="ACTION", required=True)
    retire = actions.add_parser(
        "retire",
        help="drain a removed replica's session and leave the shared subscription",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    retire.add_argument("client_id", help="the replica's FIELDLINE_INGESTOR_CLIENT_ID")
    retire.add_argument(
        "--quiet-seconds",
        type=float,
        default=3.0,
        help="how long nothing new must arrive before disconnecting (default 3)",
    )
    retire.add_argument("--data-dir", help="data dir (for the generated internal secrets)")
    retire.set_defaults(handler=cmd_retire)
