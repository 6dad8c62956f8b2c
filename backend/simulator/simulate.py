"""`fieldline simulate`: N virtual devices against any Fieldline deployment.

Registers the devices through the public API (tagged simulator=<run id>), runs them on
the real SDK at --rate readings per second each, optionally cuts their connections at
random (--faults), shows a live line, then waits for the buffers to drain and looks up
every sent reading through the API. Each reading carries `n`, its number within this
run, so the read-back is exact: a reading is found when its `n` is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from fieldline_backend.simulator.api import ProvisionError, SimulatorApi
from fieldline_backend.simulator.fleet import Fleet
from fieldline_backend.simulator.rollout import RolloutOutcome, RolloutPlan, run_rollout
from fieldline_backend.simulator.signals import Battery, Climate
from fieldline_backend.simulator.virtual import VirtualDevice, sdk_config

log = logging.getLogger(__name__)

FAULT_EVERY_S = 20.0  # mean time between dropped connections per device with --faults
DRAIN_TIMEOUT_S = 60.0
READ_BACK_TIMEOUT_S = 60.0
# API calls in flight at once when registering, reading back and deleting a run's devices:
# one at a time, 200 devices took ~40 s to delete (each waits for the broker's reload,
# which concurrent changes share) and ~45 s to read back.
API_CALLS_AT_ONCE = 8


class SimulateError(Exception):
    """Printed as one line; says what to do."""


@dataclass(frozen=True)
class SimulateOptions:
    api: str
    token: str
    devices: int = 10
    rate: float = 1.0
    duration: float = 60.0
    faults: bool = False
    cleanup: bool = False
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    mqtt_ca: str | None = None
    state_dir: str | None = None
    rollout: list[str] | None = None  # bundle files: rolled out one after the other
    canary: float = 0.1
    max_failure_ratio: float = 0.2
    rollout_timeout: float = 300.0


@dataclass
class Registered:
    id: str
    name: str
    mqtt: dict


def run_simulate(options: SimulateOptions, out=None) -> int:
    out = out or sys.stdout
    ca_pem = _read_ca(options.mqtt_ca)
    run_id = secrets.token_hex(3)
    temporary = options.state_dir is None
    state = Path(options.state_dir or tempfile.mkdtemp(prefix="fieldline-simulate-"))
    state.mkdir(parents=True, exist_ok=True)
    _log_to(state / "simulate.log")
    api = SimulatorApi(options.api, options.token, timeout=30)
    registered: list[Registered] = []
    try:
        api.me()
        _register(api, options.devices, run_id, out, registered)
        found_all = asyncio.run(_run(api, options, registered, state, ca_pem, out))
    except ProvisionError as error:  # the API refused (also a rollout's upload or start)
        raise SimulateError(str(error)) from None
    finally:
        if options.cleanup and registered:
            _delete(api, registered, out)
        api.close()
        if temporary:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if found_all else 1


def _log_to(path: Path) -> None:
    """The devices' own console lines and each injected fault, for a post-mortem."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logger = logging.getLogger("fieldline_backend.simulator")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _read_ca(path: str | None) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except OSError as error:
        raise SimulateError(f"cannot read --mqtt-ca {path}: {error.strerror}") from None


def _concurrently(call: Callable, items: Iterable, label: str, out) -> Iterator[tuple]:
    """(item, its finished future) for each item as call(item) ends, API_CALLS_AT_ONCE
    calls in flight, with a progress line. Every call runs even when a caller stops early
    (the executor waits for them): a registration that raised still leaves the others'
    devices listed for the cleanup."""
    with ThreadPoolExecutor(API_CALLS_AT_ONCE, thread_name_prefix="simulate-api") as pool:
        futures: dict[Future, object] = {pool.submit(call, item): item for item in items}
        for done, future in enumerate(as_completed(futures), 1):
            _progress(out, f"{label} {done}/{len(futures)}")
            yield futures[future], future


def _register(
    api: SimulatorApi, count: int, run_id: str, out, registered: list[Registered]
) -> None:
    """Appends each device to `registered` as it is created, so a failure part way still
    leaves every created device to the cleanup."""

    def create(index: int) -> Registered:
        name = f"sim {run_id} {index + 1}"
        created = api.create_device(name, {"simulator": run_id})
        return Registered(created["id"], name, created["mqtt"])

    refused = None
    by_index: dict[int, Registered] = {}
    for index, future in _concurrently(create, range(count), "registering devices", out):
        try:
            by_index[index] = future.result()
        except ProvisionError as error:
            refused = refused or error
        else:
            registered.append(by_index[index])
    print(file=out)
    if refused is not None:
        raise refused
    registered[:] = [by_index[index] for index in range(count)]  # in name order
    print(f"run {run_id}: {count} devices tagged simulator={run_id}", file=out, flush=True)


def _delete(api: SimulatorApi, devices: list[Registered], out) -> None:
    failed = []
    for device, future in _concurrently(
        lambda device: api.delete_device(device.id), devices, "deleting devices", out
    ):
        try:
            future.result()
        except ProvisionError as error:
            failed.append(f"{device.id}: {error}")
    print(file=out)
    if failed:
        print(f"could not delete {len(failed)} devices: {failed[:3]}", file=out, flush=True)
    else:
        print(f"deleted the {len(devices)} devices of this run", file=out, flush=True)


def _progress(out, text: str) -> None:
    if out.isatty():
        out.write("\r" + text)
        out.flush()


def _mqtt_for(device: Registered, options: SimulateOptions) -> dict:
    mqtt = dict(device.mqtt)
    if options.mqtt_host:
        mqtt["host"] = options.mqtt_host
    if options.mqtt_port:
        mqtt["port"] = options.mqtt_port
    if mqtt.get("host") in ("0.0.0.0", "::", ""):
        mqtt["host"] = "127.0.0.1"
    return mqtt


async def _run(api, options: SimulateOptions, registered, state: Path, ca_pem: str, out) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    virtual = [
        VirtualDevice(
            device.id,
            device.name,
            sdk_config(device.id, _mqtt_for(device, options), state / device.id, ca_pem),
        )
        for device in registered
    ]
    fleet = Fleet(virtual)
    started_ms = int(time.time() * 1000)
    started = time.monotonic()
    fleet.start()
    sending = [asyncio.create_task(_send(device, options.rate)) for device in virtual]
    if options.faults:
        sending += [asyncio.create_task(_faults(device)) for device in virtual]
    status: dict[str, str] = {}
    live = asyncio.create_task(_live(fleet, out, status))
    rollout = None
    if options.rollout:
        rollout = asyncio.create_task(_roll_out(api, options, fleet, status))
    try:
        await asyncio.wait_for(stop.wait(), options.duration)
        print("\ninterrupted: draining and checking what was sent so far", file=out)
    except TimeoutError:
        pass
    outcomes: list[RolloutOutcome] = []
    if rollout is not None:  # the devices keep sending until it ends (it has its timeout)
        outcomes = await _rollout_end(rollout, stop)
    for task in sending:
        task.cancel()
    await asyncio.gather(*sending, return_exceptions=True)
    for device in virtual:
        device.back_in_range()
    sent_for = time.monotonic() - started
    drained = await fleet.drain(DRAIN_TIMEOUT_S)
    live.cancel()
    totals = fleet.totals()
    print(f"\r  {totals.line()}", file=out)
    await fleet.stop()
    for outcome in outcomes:
        print(outcome.line(), file=out, flush=True)
    missing = await asyncio.to_thread(_read_back, api, virtual, started_ms, out)
    found = totals.sent - sum(len(gap) for gap in missing.values())
    print(
        f"\nsummary: {totals.devices} devices, {totals.sent} readings in {sent_for:.0f} s "
        f"({totals.sent / max(sent_for, 0.001):.1f}/s), {totals.acknowledged} acknowledged, "
        f"{totals.reconnects} reconnects, {totals.dropped} dropped by full buffers"
        + ("" if drained else f", NOT drained within {DRAIN_TIMEOUT_S:.0f} s"),
        file=out,
    )
    if not missing:
        print(f"read back: all {totals.sent} sent readings found through the API", file=out)
        return True
    worst = sorted(missing.items(), key=lambda item: -len(item[1]))[:5]
    print(
        f"read back: {found} of {totals.sent} found; missing (device: n) "
        + "; ".join(f"{device_id}: {gap[:10]}" for device_id, gap in worst),
        file=out,
    )
    return False


async def _send(device: VirtualDevice, rate: float) -> None:
    """Readings at `rate` per second on schedule; `n` numbers them within the run."""
    every = 1.0 / rate
    climate = Climate(rng=random.Random(device.device_id))
    battery = Battery()
    next_at = time.monotonic() + random.uniform(0, min(every, 1.0))
    start = time.time()
    n = 0
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += device.interval_s or every  # a remote config's interval wins
        now = time.time()
        temperature = climate.temperature(now)
        device.publish(
            {
                "n": n,
                "temperature": temperature,
                "humidity": climate.humidity(temperature),
                "battery": battery.percent(now - start),
            }
        )
        n += 1


async def _faults(device: VirtualDevice) -> None:
    """Connections dropped at random; one drop in three also keeps the device out of
    range for 1-5 s, so readings pile up in its journal."""
    rng = random.Random()
    while True:
        await asyncio.sleep(rng.expovariate(1.0 / FAULT_EVERY_S))
        out_of_range = rng.random() < 1 / 3
        log.info("fault: %s %s", device.device_id, "out of range" if out_of_range else "drop")
        if out_of_range:
            device.out_of_range()
            await asyncio.sleep(rng.uniform(1.0, 5.0))
            device.back_in_range()
        else:
            device.drop_link()


async def _roll_out(
    api, options: SimulateOptions, fleet: Fleet, status: dict
) -> list[RolloutOutcome]:
    """Once every device was online (or after 30 s), each bundle's rollout in turn (the
    next when the previous ended); the current one's line in `status`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(d.first_online.wait() for d in fleet.devices)), 30.0
        )

    def show(text: str) -> None:
        status["rollout"] = text

    outcomes = []
    for bundle in options.rollout or []:
        plan = RolloutPlan(
            Path(bundle), options.canary, options.max_failure_ratio, options.rollout_timeout
        )
        outcome = await run_rollout(api, plan, [d.device_id for d in fleet.devices], show)
        status["rollout"] = outcome.line()
        outcomes.append(outcome)
    return outcomes


async def _rollout_end(rollout: asyncio.Task, stop: asyncio.Event) -> list[RolloutOutcome]:
    """The rollouts' outcomes; none when interrupted before they ended."""
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({rollout, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not rollout.done():
        rollout.cancel()
        return []
    return rollout.result()  # a refused upload or start raises here


async def _live(fleet: Fleet, out, status: dict) -> None:
    tty = out.isatty()
    every = 1.0 if tty else 5.0
    while True:
        await asyncio.sleep(every)
        line = fleet.totals().line()
        if status.get("rollout"):
            line += "  |  " + status["rollout"]
        out.write(f"\r  {line}   " if tty else f"  {line}\n")
        out.flush()


def _read_back(api: SimulatorApi, devices: list[VirtualDevice], started_ms: int, out) -> dict:
    """{device id: the `n` of each reading not found} (empty when all are), retried
    while the pipeline catches up."""
    deadline = time.monotonic() + READ_BACK_TIMEOUT_S
    pending = {device.device_id: device.sent for device in devices if device.sent}
    missing: dict[str, list[int]] = {}

    def points(device_id: str) -> list:
        return api.points(device_id, "n", started_ms - 60_000, int(time.time() * 1000) + 60_000)

    while True:
        missing = {}
        for device_id, future in _concurrently(points, pending, "reading back devices", out):
            seen = {
                int(value)
                for _, value in future.result()
                if isinstance(value, int | float) and math.isfinite(value)
            }
            gap = sorted(set(range(pending[device_id])) - seen)
            if gap:
                missing[device_id] = gap
        if not missing or time.monotonic() > deadline:
            return missing
        pending = {device_id: pending[device_id] for device_id in missing}
        time.sleep(1.0)
