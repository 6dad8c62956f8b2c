"""Hardware in the loop: a real board when FIELDLINE_HIL_PORT is set, else the rig.

Whichever runs is named in the session header and in every test id ([rig] or [board]).
On a real board the tests write files (under fl_hil/, main.py and config.json): use a
board kept for testing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil_tests.rig import Rig

# The shared real-service fixtures (PostgreSQL, ...) of the main suite.
from tests.conftest import pg_admin_url, pg_url, services  # noqa: F401

# A main.py that counts its boots in a file and then loops forever printing, like an app.
LOOPING_MAIN = """\
try:
    n = int(open('boots.txt').read())
except OSError:
    n = 0
open('boots.txt', 'w').write(str(n + 1))
print('app booted', n + 1)
import time
while True:
    time.sleep(0.05)
"""

HIL_PORT = os.environ.get("FIELDLINE_HIL_PORT")
TARGET = "board" if HIL_PORT else "rig"


def pytest_report_header(config) -> str:
    if HIL_PORT:
        return f"hil_tests: against the real board on {HIL_PORT} (FIELDLINE_HIL_PORT)"
    return (
        "hil_tests: against the rig (MicroPython unix port behind a pty; "
        "set FIELDLINE_HIL_PORT=/dev/ttyUSB0 for a real board)"
    )


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path, monkeypatch):
    """No saved login leaks into or out of a test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("FIELDLINE_API_URL", raising=False)
    monkeypatch.delenv("FIELDLINE_API_TOKEN", raising=False)


@dataclass
class BoardUnderTest:
    port: str
    rig: Rig | None  # None on a real board

    @property
    def is_rig(self) -> bool:
        return self.rig is not None


@pytest.fixture(params=[TARGET])
def board(request, tmp_path) -> Iterator[BoardUnderTest]:
    """A board at a serial port: a fresh rig (empty flash) per test, or the real one."""
    if HIL_PORT:
        yield BoardUnderTest(HIL_PORT, None)
        return
    rig = Rig(tmp_path / "flash").start()
    try:
        yield BoardUnderTest(rig.port, rig)
    finally:
        rig.stop()


@pytest.fixture
def other_program_port(tmp_path) -> Iterator[callable]:
    """Start a pty with some other program than MicroPython behind it; yields a factory."""
    rigs: list[Rig] = []

    def start(*program: str) -> str:
        rig = Rig(tmp_path / f"other{len(rigs)}", program=list(program)).start()
        rigs.append(rig)
        return rig.port

    yield start
    for rig in rigs:
        rig.stop()


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def wait_for_console(link, text: bytes, seconds: float = 10) -> bytes:
    """What the board printed until `text` showed up (or `seconds` passed)."""
    console = b""
    deadline = time.monotonic() + seconds
    while text not in console and time.monotonic() < deadline:
        console += link.read_console(0.2)
    return console


@pytest.fixture
def live_backend(tmp_path, request):
    """A whole backend on a fresh PostgreSQL database and a private Mosquitto (backend.py)."""
    from hil_tests.backend import running_backend
    from tests.support.servers import create_pg_database, drop_pg_database

    database = create_pg_database(request.getfixturevalue("pg_admin_url"))
    try:
        with running_backend(tmp_path / "backend", database) as running:
            yield running
    finally:
        drop_pg_database(database)
