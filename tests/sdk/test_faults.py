"""Done-when 3 and 6: a fault-injecting proxy (stall, drop, delay) between the device and
the broker, and a broker that refuses the device's password."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import time

import pytest

from fieldline.backoff import Backoff, seed_for
from tests.sdk.board import (
    BoardProcess,
    Collector,
    build_board,
    device_config,
    first_arrival_order,
    new_device_id,
)
from tests.sdk.fault_proxy import FaultProxy

RETRY = re.compile(r"retry in (\d+) ms \(attempt (\d+), (.*)\)$")


def _retries(device: BoardProcess) -> list[tuple[int, int, str]]:
    found = []
    for line in device.lines():
        match = RETRY.search(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3]))
    return found


@pytest.mark.slow
def test_stall_drop_delay_dead_link_detected_backoff_checked_nothing_lost(
    anonymous_mosquitto, tmp_path
):
    broker = anonymous_mosquitto
    proxy = FaultProxy(broker.port)
    device_id = new_device_id("proxy")
    collector = Collector(broker.port, device_id)
    keepalive_s, connect_timeout_s, base_ms, cap_ms = 2, 1.0, 200, 1600
    config = device_config(
        device_id,
        proxy.port,
        mqtt={"keepalive": keepalive_s, "connect_timeout_ms": int(connect_timeout_s * 1000)},
        backoff={"base_ms": base_ms, "cap_ms": cap_ms, "stable_s": 2},
    )
    device = BoardProcess(build_board(tmp_path / "board", config))
    try:
        collector.wait_for_seqs(set(range(1, 31)), timeout=30, device=device)
        assert not _retries(device), "the device failed before any fault was injected"

        # 1. The link stalls without closing: detected within 1.5 keepalives.
        accepts_before = len(proxy.accepts)
        stalled_at = time.monotonic()
        proxy.stall()
        device.wait_for_line("link lost", timeout=20)
        detected_after = time.monotonic() - stalled_at
        assert detected_after <= 1.5 * keepalive_s + 2.5, (
            f"dead link noticed after {detected_after:.1f} s"
        )
        assert "dead link" in device.console()

        # 2. New connections are answered by silence: the schedule runs up to the cap.
        failures = 7
        device.wait_for_line("retry in", timeout=90, count=failures)
        proxy.heal()
        device.wait_for_line("fieldline: online", timeout=30, count=2)
        retries = _retries(device)[:failures]
        delays = [d for d, _, _ in retries]
        expected = Backoff(seed_for(device_id, 1), base_ms, cap_ms)
        assert delays == [expected.delay_ms() for _ in range(failures)], (
            f"the device's delays {delays} are not its seeded full-jitter schedule"
        )
        assert [a for _, a, _ in retries] == list(range(1, failures + 1))
        ceilings = [min(cap_ms, base_ms << i) for i in range(failures)]
        assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True)), (delays, ceilings)
        assert ceilings == sorted(ceilings) and ceilings[-1] == cap_ms, "growing up to the cap"
        assert len(set(delays)) == len(delays), f"no jitter: {delays}"
        # ...and the device really waited: attempt k+1 was refused by silence (the connect
        # timeout), then the device slept delays[k+1] before attempt k+2.
        accepts = proxy.accepts[accepts_before:]
        assert len(accepts) >= failures
        for k in range(failures - 1):
            gap = accepts[k + 1] - accepts[k]
            wanted = connect_timeout_s + delays[k + 1] / 1000
            assert wanted - 0.1 <= gap <= wanted + 2.5, f"attempt {k + 2}: {gap:.2f} s, {wanted} s"

        # 3. Connections dropped outright. After a stable connection (stable_s = 2) the
        # schedule starts again from the base; after a short one it does not.
        time.sleep(3)
        proxy.drop_all()
        device.wait_for_line("fieldline: online", timeout=30, count=3)
        delay, attempt, why = _retries(device)[-1]
        assert attempt == 1 and delay <= base_ms and "link lost" in why, (delay, attempt, why)
        proxy.drop_all()
        device.wait_for_line("fieldline: online", timeout=30, count=4)
        assert _retries(device)[-1][1] == 2, "a connection that lived < stable_s reset the backoff"

        # 4. A laggy link: 300 ms each way on every chunk.
        proxy.delay_s = 0.3
        time.sleep(3)
        proxy.delay_s = 0.0

        last = max(device.published_seqs())
        collector.wait_for_seqs(set(range(1, last + 1)), timeout=60, device=device)
        order = first_arrival_order(collector.seqs(boot=1))
        assert order == sorted(order), "readings arrived out of order"

        # A dozen links came and went: their sockets must be closed (a board has ~10).
        fd_dir = f"/proc/{device.process.pid}/fd"
        sockets = [
            f for f in os.listdir(fd_dir) if os.readlink(f"{fd_dir}/{f}").startswith("socket:")
        ]
        assert len(sockets) <= 2, f"{len(sockets)} sockets open after the reconnects: a leak"
    finally:
        device.kill()
        proxy.close()
        collector.close()


def _mosquitto_hash(password: str, iterations: int = 101) -> str:
    """Mosquitto 2's password-file hash: $7$ = PBKDF2-SHA512."""
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_wrong_password_is_reported_and_retried_no_faster_than_the_cap(mosquitto, tmp_path):
    device_id = new_device_id("auth")
    good, collector_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    mosquitto.password_file.write_text(
        f"{device_id}:{_mosquitto_hash(good)}\n"
        f"collector-{device_id}:{_mosquitto_hash(collector_password)}\n"
    )
    mosquitto.acl_file.write_text(
        f"user {device_id}\ntopic readwrite devices/{device_id}/#\n\n"
        f"user collector-{device_id}\ntopic read devices/#\n"
    )
    mosquitto.reload()
    collector = Collector(mosquitto.port, device_id, password=collector_password)
    proxy = FaultProxy(mosquitto.port)
    cap_ms = 1000
    wrong = "wrong-" + secrets.token_hex(8)
    config = device_config(
        device_id,
        proxy.port,
        mqtt={"password": wrong},
        backoff={"base_ms": 50, "cap_ms": cap_ms, "stable_s": 2},
    )
    board = build_board(tmp_path / "board", config)
    device = BoardProcess(board)
    fixed = None
    try:
        device.wait_for_line("check mqtt.username and mqtt.password", timeout=20)
        window_s = 6.0
        start = time.monotonic()
        time.sleep(window_s)
        attempts = [t for t in proxy.accepts if start <= t <= start + window_s]
        assert 2 <= len(attempts) <= window_s / (cap_ms / 1000) + 1, (
            f"{len(attempts)} connection attempts in {window_s} s with a {cap_ms} ms cap"
        )
        console = device.console()
        assert "refused" in console and "fieldline: online" not in console
        assert wrong not in console, "the password was printed"
        device.kill()

        # The same broker admits the right password: the refusal was about the password.
        config["mqtt"]["password"] = good
        (board / "config.json").write_text(json.dumps(config))
        fixed = BoardProcess(board)
        collector.wait_for_seqs({1, 2, 3}, timeout=30, boot=2, device=fixed)
        assert good not in fixed.console()
    finally:
        device.kill()
        if fixed is not None:
            fixed.kill()
        proxy.close()
        collector.close()
