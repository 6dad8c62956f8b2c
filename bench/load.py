"""The load of bench/ingest.py, from the broker's own C clients so that the generator is
not what is measured: one `mosquitto_pub -l` per device (its own account, QoS 1, a
window of unacknowledged publishes), fed readings line by line from Python, and
`mosquitto_sub` as the reference subscriber.

Two ways to feed: `as_fast_as_acked` writes every line at once (the pipe and the
window pace it), `paced` writes them at a fixed rate with `ts` = the moment the line is
handed to the publisher (the latency runs measure from there).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass

WINDOW = 200  # unacknowledged publishes per device (mosquitto_pub -M)
_next_ts = 0  # the first reading time the next run may use (ms)


def reading(ts: int, seq: int) -> str:
    return json.dumps(
        {"ts": ts, "seq": seq, "boot": 1, "values": {"temperature": 21.5, "humidity": 40.0}}
    )


def require_clients() -> None:
    missing = [c for c in ("mosquitto_pub", "mosquitto_sub") if shutil.which(c) is None]
    if missing:
        raise SystemExit(
            f"bench: {', '.join(missing)} not found; install Debian's mosquitto-clients "
            "(scripts/services.sh up does)"
        )


@dataclass
class Run:
    started: float
    finished: float  # every publisher exited: all acknowledged
    total: int

    @property
    def per_s(self) -> float:
        return self.total / (self.finished - self.started)


class Publishers:
    """One mosquitto_pub per device account, for one run."""

    def __init__(self, host: str, port: int, accounts: list[dict]):
        self.host, self.port, self.accounts = host, port, accounts

    def _start(self) -> list[subprocess.Popen]:
        processes = []
        for account in self.accounts:
            command = [
                "mosquitto_pub", "-h", self.host, "-p", str(self.port), "-V", "mqttv311",
                "-i", account["client_id"], "-u", account["username"], "-P", account["password"],
                "-t", f"devices/{account['client_id']}/telemetry", "-q", "1", "-l",
                "-M", str(WINDOW),
            ]  # fmt: skip
            processes.append(
                subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            )
        time.sleep(0.5)  # connected
        return processes

    def _finish(self, processes: list[subprocess.Popen]) -> float:
        for process in processes:
            if not process.stdin.closed:
                process.stdin.close()  # end of input: it exits once all are acknowledged
        for process in processes:
            if process.wait(timeout=600):
                err = process.stderr.read().decode()
                raise RuntimeError(f"mosquitto_pub exited {process.returncode}: {err}")
        return time.time()

    def as_fast_as_acked(self, total: int, seq_start: int = 0) -> Run:
        """`total` readings spread over the devices, written at once."""
        global _next_ts
        processes = self._start()
        base = max(int(time.time() * 1000), _next_ts)
        per_device = [[] for _ in processes]
        for n in range(total):
            # ts 1 ms apart per device (the series key: a ts taken twice overwrites),
            # never one an earlier run of this process used; seq unique per run
            per_device[n % len(processes)].append(
                reading(base + n // len(processes), seq_start + n)
            )
        _next_ts = base + total // len(processes) + 1
        started = time.time()
        feeders = [
            threading.Thread(target=_feed, args=(p, lines), daemon=True)
            for p, lines in zip(processes, per_device, strict=True)
        ]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        return Run(started, self._finish(processes), total)

    def paced(self, rate: float, seconds: float, seq_start: int = 0) -> Run:
        """rate readings/s over all devices for `seconds`; ts = when each is handed over."""
        global _next_ts
        processes = self._start()
        total = int(rate * seconds)
        started = time.time()
        last: dict[int, int] = dict.fromkeys(range(len(processes)), _next_ts - 1)
        for n in range(total):
            delay = started + n / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            device = n % len(processes)
            ts = max(int(time.time() * 1000), last.get(device, 0) + 1)
            last[device] = ts
            stdin = processes[device].stdin
            stdin.write(reading(ts, seq_start + n).encode() + b"\n")
            stdin.flush()
        _next_ts = max(last.values()) + 1
        return Run(started, self._finish(processes), total)


def _feed(process: subprocess.Popen, lines: list[str]) -> None:
    process.stdin.write(("\n".join(lines) + "\n").encode())
    process.stdin.close()


class Subscriber:
    """mosquitto_sub counting `total` messages on a filter, with its own clock."""

    def __init__(self, host: str, port: int, username: str, password: str, total: int):
        command = [
            "mosquitto_sub", "-h", host, "-p", str(port), "-V", "mqttv311", "-q", "1",
            "-u", username, "-P", password, "-i", f"bench-ref-{time.time_ns()}",
            "-t", "devices/+/telemetry", "-C", str(total), "-F", "%U",
        ]  # fmt: skip
        self.total = total
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # subscribed

    def received(self, started: float, timeout: float = 120) -> float:
        """msg/s from `started` to the last message's arrival (its own timestamp)."""
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        stamps = [float(line) for line in out.split()]
        if len(stamps) < self.total:
            print(f"\n  mosquitto_sub got {len(stamps)} of {self.total}")
        return len(stamps) / (stamps[-1] - started) if stamps else 0.0


class CpuUse:
    """CPU time of this machine's processes over a run, grouped by what they are (from
    /proc): where two cores go when the pipeline is at its limit."""

    GROUPS = (  # (group, matches the command line)
        ("generator (mosquitto_pub)", "mosquitto_pub"),
        ("Mosquitto", "mosquitto -c"),
        ("RabbitMQ", "beam.smp"),
        ("InfluxDB", "influxd"),
        ("PostgreSQL", "postgres"),
        ("ingestor", "serve ingestor"),
        ("storage", "serve storage"),
    )

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")
        self.started = time.monotonic()
        self.before = self._read()
        self.children = self._children()

    @staticmethod
    def _children() -> float:
        """CPU of this process's children that exited and were waited for: the
        publishers of a finished run, gone from /proc by the time it is read."""
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def _read(self) -> dict[str, float]:
        used: dict[str, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            group = next((g for g, needle in self.GROUPS if needle in command), None)
            if group is None:
                group = "this bench" if int(entry) == os.getpid() else "other"
            # utime, stime (fields 14, 15 of stat; after the command's ")" at 11, 12)
            seconds = (int(fields[11]) + int(fields[12])) / self.tick
            used[f"{group}:{entry}"] = seconds
        return used

    def cores(self) -> list[tuple[str, float]]:
        """(group, cores used on average) since this was made, busiest first."""
        after, wall = self._read(), time.monotonic() - self.started
        by_group = {"generator (mosquitto_pub)": self._children() - self.children}
        for key, seconds in after.items():
            group = key.rsplit(":", 1)[0]
            by_group[group] = by_group.get(group, 0) + seconds - self.before.get(key, 0)
        return sorted(((g, s / wall) for g, s in by_group.items()), key=lambda r: -r[1])
