"""`fieldline demo`: every service in this process on the embedded defaults, a demo
account, virtual devices registered through the public API, two alert rules, and the
devices running the real SDK until Ctrl-C (or --duration).

The services run under uvicorn in a thread (as `fieldline up` would, minus its signal
handling); the virtual devices run on the main thread's event loop, which owns Ctrl-C:
devices leave first (so the broker is still there for their DISCONNECT), then the
services stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fieldline_backend.common.settings import SERVICES, Settings, load_settings
from fieldline_backend.runner import log_path, prepare_process, server_for
from fieldline_backend.simulator import demo_setup
from fieldline_backend.simulator.api import ProvisionError, SimulatorApi
from fieldline_backend.simulator.demo_guide import console_url, guide
from fieldline_backend.simulator.fleet import Fleet
from fieldline_backend.simulator.scenario import DemoTimeline, Profile, SimClock, demo_profiles
from fieldline_backend.simulator.virtual import VirtualDevice, sdk_config

log = logging.getLogger(__name__)

DEMO_MONITOR_INTERVAL = 2.0  # seconds; the default 10 would make the demo feel slow


class DemoError(Exception):
    """Printed as one line; says what to do."""


@dataclass(frozen=True)
class DemoOptions:
    data_dir: str | None = None
    http_port: int | None = None
    http_host: str | None = None
    mqtt_port: int | None = None
    devices: int = 5
    speed: float = 1.0
    duration: float | None = None


def demo_settings(options: DemoOptions) -> Settings:
    overrides: dict = {}
    if "FIELDLINE_MONITOR_INTERVAL" not in os.environ:
        overrides["monitor_interval"] = DEMO_MONITOR_INTERVAL
    settings = load_settings(
        data_dir=options.data_dir,
        http_port=options.http_port,
        http_host=options.http_host,
        mqtt_port=options.mqtt_port,
        **overrides,
    )
    if settings.mqtt_url or settings.database_url or settings.amqp_url or settings.influx_url:
        raise DemoError(
            "the demo runs on the embedded defaults; unset the FIELDLINE_*_URL variables "
            "(or use `fieldline simulate` against a real deployment)"
        )
    return settings


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class DemoPort:
    field: str  # the Settings field
    host: str
    what: str
    option: str


DEMO_PORTS = (
    DemoPort("http_port", "", "HTTP API", "--http-port"),  # host: settings.http_host
    DemoPort("mqtt_port", "0.0.0.0", "MQTT broker", "--mqtt-port"),
)
NEARBY_PORTS = 20  # a taken default moves to the first free one of the next 20, else any


def free_port_near(host: str, port: int) -> int:
    for candidate in range(port + 1, port + 1 + NEARBY_PORTS):
        if port_is_free(host, candidate):
            return candidate
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def choose_ports(settings: Settings) -> tuple[Settings, list[str]]:
    """The demo must just work: a default port that is taken (a Mosquitto on 1883 is common)
    moves to a free one, said in the guide. A port the user chose (option, environment or
    config file) stays theirs: taken is an error."""
    moved: dict[str, int] = {}
    notes = []
    for port in DEMO_PORTS:
        host = port.host or settings.http_host
        number = getattr(settings, port.field)
        if port_is_free(host, number):
            continue
        if port.field in settings.model_fields_set:
            raise DemoError(
                f"port {number} ({port.what}) is already in use, maybe by another Fieldline or "
                f"MQTT broker; stop it or pick another port with {port.option} {number + 1}"
            )
        moved[port.field] = free_port_near(host, number)
        notes.append(f"port {number} was taken: {port.what} on {moved[port.field]}")
    return settings.model_copy(update=moved), notes


class ServicesThread:
    """Every service under uvicorn in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.server = server_for(settings, SERVICES)
        self.thread = threading.Thread(target=self.server.run, name="fieldline-services")

    def start(self, timeout: float = 60.0) -> bool:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return self.server.started

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def run_demo(options: DemoOptions, out=None) -> int:
    out = out or sys.stdout
    if options.devices < 2:
        raise DemoError("the demo needs at least 2 devices (--devices 2 or more)")
    if options.speed <= 0:
        raise DemoError("--speed must be above 0 (1 = real time, 60 = an hour a minute)")
    settings, port_notes = choose_ports(demo_settings(options))
    log_file = log_path(settings)
    prepare_process(settings, log_file, console=False)
    print(
        f"Starting Fieldline (data dir {settings.data_dir}, log {log_file}) ...",
        file=out,
        flush=True,
    )
    services = ServicesThread(settings)
    try:
        if not services.start():
            raise DemoError(f"the services did not start; see the log {log_file}")
        asyncio.run(_run(settings, options, log_file, out, port_notes))
    finally:
        services.stop()
    print("Fieldline demo stopped.", file=out, flush=True)
    return 0


async def _run(
    settings: Settings, options: DemoOptions, log_file: Path, out, port_notes: list[str]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    timeline = DemoTimeline(speed=options.speed, monitor_interval_s=settings.monitor_interval)
    profiles = demo_profiles(options.devices)
    base = settings.http_base_url
    try:
        setup = await asyncio.to_thread(_prepare, settings, profiles, timeline)
    except (demo_setup.DemoSetupError, ProvisionError) as error:
        raise DemoError(f"{error} (log: {log_file})") from None
    account, devices, rule_ids = setup
    api = SimulatorApi(base, account.token)
    virtual = [
        VirtualDevice(
            device.id,
            device.name,
            sdk_config(
                device.id,
                {"host": "127.0.0.1", "port": settings.mqtt_port, "password": device.mqtt_password},
                demo_setup.demo_dir(settings) / "devices" / device.id,
            ),
        )
        for device in devices
    ]
    fleet = Fleet(virtual)
    clock = SimClock.starting_now(options.speed)
    started_ms = int(time.time() * 1000)
    fleet.start()
    tasks = [
        asyncio.create_task(_sample(device, profile, clock, timeline))
        for device, profile in zip(virtual, profiles, strict=True)
    ]
    tasks.append(asyncio.create_task(_script(virtual, clock, timeline)))
    tasks.append(asyncio.create_task(_enable_rules(api, devices, rule_ids, started_ms)))
    console = await asyncio.to_thread(console_url, base)
    text = guide(settings, account, devices, timeline, log_file, console, port_notes)
    print(text, file=out, flush=True)
    if out.isatty():
        tasks.append(asyncio.create_task(_live_line(fleet, settings, out)))
    with contextlib.suppress(TimeoutError):  # --duration ran out
        await asyncio.wait_for(stop.wait(), options.duration)
    if out.isatty():
        print(file=out)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Disabled while stopped, so the next start does not report the pause as an outage.
    try:
        await asyncio.wait_for(
            asyncio.to_thread(
                api.change_alert_rule, rule_ids[demo_setup.DEADMAN_RULE], {"enabled": False}
            ),
            2.0,
        )
    except Exception:  # noqa: BLE001 - best effort on the way out
        log.warning("could not disable the deadman rule on stop", exc_info=True)
    await fleet.stop(timeout=1.5)
    api.close()
    log.info("demo stopped: %s", fleet.totals().line())


def _prepare(settings: Settings, profiles: list[Profile], timeline: DemoTimeline):
    account = demo_setup.ensure_account(settings, settings.http_base_url)
    with SimulatorApi(settings.http_base_url, account.token) as api:
        devices = demo_setup.ensure_devices(settings, api, profiles)
        rule_ids = demo_setup.ensure_rules(api, devices, timeline)
    return account, devices, rule_ids


async def _sample(device: VirtualDevice, profile: Profile, clock: SimClock, timeline) -> None:
    """One reading per timeline.sample_every_s, on schedule (no drift with load)."""
    every = timeline.sample_every_s
    next_at = time.monotonic() + random.uniform(0, min(every, 1.0))
    heater = profile.role == "heater stuck"
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += device.interval_s or every  # a remote config's interval wins
        wall = clock.wall_elapsed()
        sim_epoch = clock.sim_epoch(wall)
        offset = timeline.heater_offset_c(wall) if heater else 0.0
        temperature = profile.climate.temperature(sim_epoch, offset)
        values: dict = {
            "temperature": temperature,
            "humidity": profile.climate.humidity(temperature),
            "battery": profile.battery.percent(clock.sim_elapsed(wall)),
        }
        if profile.door is not None:
            values["door"] = profile.door.is_open(sim_epoch)
        device.publish(values)


async def _script(devices: list[VirtualDevice], clock: SimClock, timeline) -> None:
    """The flaky device (the second) loses its Wi-Fi for a while, then comes back."""
    flaky = devices[1]
    while True:
        silent = timeline.silent(clock.wall_elapsed())
        if silent and flaky.radio.in_range:
            log.info("demo: %s goes out of Wi-Fi range", flaky.name)
            flaky.out_of_range()
        elif not silent and not flaky.radio.in_range:
            log.info("demo: %s is back in Wi-Fi range", flaky.name)
            flaky.back_in_range()
        await asyncio.sleep(0.2)


async def _enable_rules(api: SimulatorApi, devices, rule_ids, started_ms: int) -> None:
    missing = await asyncio.to_thread(
        demo_setup.wait_until_heard, api, devices, started_ms - 1000, 30.0
    )
    if missing:
        log.warning("demo: no readings yet from %s; enabling the rules anyway", missing)
    await asyncio.to_thread(demo_setup.enable_rules, api, rule_ids)
    log.info("demo: alert rules enabled")


async def _live_line(fleet: Fleet, settings: Settings, out) -> None:
    mail = settings.data_dir / "mail" / "new"
    while True:
        await asyncio.sleep(1.0)
        mails = len(list(mail.iterdir())) if mail.is_dir() else 0
        out.write(f"\r  {fleet.totals().line()}  mails {mails}   ")
        out.flush()
