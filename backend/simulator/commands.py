"""`fieldline demo` and `fieldline simulate`, registered by backend/cli.py."""

from __future__ import annotations

import argparse
import dataclasses

DEMO_EXAMPLES = """\
examples:
  fieldline demo                                   5 devices, real time, until Ctrl-C
  fieldline demo --speed 60                        an hour of signals per minute
  fieldline demo --data-dir ./demo --http-port 8080 --mqtt-port 1884
  fieldline demo --devices 200 --duration 300      a bigger fleet for five minutes

Within two minutes at --speed 1 an alert mail and an offline mail land in
<data dir>/mail/new/. Running it again on the same data dir continues with the same
user, devices and history.
"""

SIMULATE_EXAMPLES = """\
examples:
  fieldline simulate --api http://127.0.0.1:8000 --token flp_... --devices 50 --rate 1
  fieldline simulate --api https://fieldline.example.com --token "$TOKEN" \\
      --devices 200 --rate 0.2 --duration 600 --faults --cleanup
  fieldline simulate --api ... --token ... --mqtt-host 10.0.0.5 --mqtt-port 1883
  fieldline bundle --mpy none -o app-0.2.tar --version 0.2.0
  fieldline simulate --api ... --token ... --devices 200 --faults --rollout app-0.2.tar

Devices are registered through the API (tag simulator=<run id>) and run the real SDK.
The live line shows sent / acknowledged / buffered / reconnects; at the end every sent
reading is looked up through the API. Exit status 0 only when all were found.
"""


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value

    return parse


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _options_from(args: argparse.Namespace, options_type):
    """The command's options dataclass, each field taken from the argument of its name."""
    return options_type(**{f.name: getattr(args, f.name) for f in dataclasses.fields(options_type)})


def cmd_demo(args: argparse.Namespace) -> int:
    from fieldline_backend.common.commands import CommandError
    from fieldline_backend.simulator.demo import DemoError, DemoOptions, run_demo

    try:
        return run_demo(_options_from(args, DemoOptions))
    except DemoError as error:
        raise CommandError(str(error)) from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from fieldline_backend.common.commands import CommandError
    from fieldline_backend.simulator.simulate import SimulateError, SimulateOptions, run_simulate

    try:
        return run_simulate(_options_from(args, SimulateOptions))
    except SimulateError as error:
        raise CommandError(str(error)) from None


def register(commands: argparse._SubParsersAction) -> None:
    from fieldline_backend.common.commands import add_data_dir, add_ports

    demo = commands.add_parser(
        "demo",
        help="the whole system with virtual devices, on this machine, in one command",
        description="Start every service in this process on the embedded defaults, create "
        "a demo user and token, register virtual devices through the API, create a "
        "threshold and an offline alert rule, and run the devices (real SDK) until Ctrl-C.",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_dir(demo)
    add_ports(demo)
    demo.add_argument("--devices", type=_positive(int), default=5, help="how many (default 5)")
    demo.add_argument(
        "--speed",
        type=_positive(float),
        default=1.0,
        help="simulated time per wall second (default 1; 60 = an hour a minute)",
    )
    demo.add_argument(
        "--duration", type=_positive(float), help="stop by itself after this many seconds"
    )
    demo.set_defaults(handler=cmd_demo)

    simulate = commands.add_parser(
        "simulate",
        help="virtual devices against any Fieldline deployment (load and fault test)",
        description="Register N virtual devices through the API of a running Fieldline, "
        "run them with the real SDK, and check that every reading they sent can be read "
        "back through the API.",
        epilog=SIMULATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument("--api", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    simulate.add_argument("--token", required=True, help="an API token (flp_...) of the owner")
    simulate.add_argument("--devices", type=_positive(int), default=10, help="default 10")
    simulate.add_argument(
        "--rate",
        type=_positive(float),
        default=1.0,
        help="readings per second per device (default 1; 0.1 = one every 10 s)",
    )
    simulate.add_argument(
        "--duration", type=_positive(float), default=60.0, help="seconds of sending (default 60)"
    )
    simulate.add_argument(
        "--faults",
        action="store_true",
        help="drop device connections at random (about one per device per 20 s)",
    )
    simulate.add_argument(
        "--cleanup", action="store_true", help="delete the devices this run created at the end"
    )
    simulate.add_argument("--mqtt-host", help="broker address to use instead of the API's")
    simulate.add_argument("--mqtt-port", type=int, help="broker port to use instead of the API's")
    simulate.add_argument("--mqtt-ca", help="CA certificate (PEM file) when the broker uses TLS")
    simulate.add_argument(
        "--state-dir", help="where the devices' SDK journals live (default: a temporary folder)"
    )
    ota = simulate.add_argument_group("OTA rollout (docs/ota.md)")
    ota.add_argument(
        "--rollout",
        metavar="BUNDLE",
        action="append",
        help="a bundle file (fieldline bundle --mpy none): roll it out to the run's devices "
        "once they are online; the run lasts until the rollout ends; repeatable (each "
        "starts when the one before ended)",
    )
    ota.add_argument(
        "--canary",
        type=_fraction,
        default=0.1,
        help="fraction of the devices updated first (default 0.1)",
    )
    ota.add_argument(
        "--max-failure-ratio",
        type=_fraction,
        default=0.2,
        help="halt when more than this fraction of finished devices failed (default 0.2)",
    )
    ota.add_argument(
        "--rollout-timeout",
        type=_positive(float),
        default=300.0,
        help="stop following the rollout after this many seconds (default 300)",
    )
    simulate.set_defaults(handler=cmd_simulate)
