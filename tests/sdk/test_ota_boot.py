"""main.py with an update on trial (docs/ota.md, steps 3-5), on the ESP32-sized interpreter
at a board's heap and under CPython: a staged update is switched before the app is
imported; a new version that raises at import is rolled back at once and the old one
runs in the same boot; one that stops with an exception, or is not confirmed within
ota.trial_s, is rolled back and the board resets into the old version; one confirmed in
time keeps running. The apps here are stand-ins (no broker): the old one prints, the new
ones fail in their own ways."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.sdk.board import (
    ESP32_HEAP,
    ESP32_MICROPYTHON,
    BoardProcess,
    build_board,
    device_config,
    require_esp32_micropython,
)

OLD_APP = """\
import time
print("old app running", open("version.json").read())


def run():
    while True:
        time.sleep(0.05)
"""

NEW_APPS = {
    "raises at import": 'raise ValueError("broken at import")\n',
    "stops": 'print("new app running")\n\n\nasync def main():\n    raise RuntimeError("stopped")\n',
    "never confirms": (
        "import asyncio\n\nprint('new app running')\n\n\nasync def main():\n"
        "    while True:\n        await asyncio.sleep(0.05)\n"
    ),
    "confirms": (
        "import asyncio, json\n\nprint('new app running')\n\n\nasync def main():\n"
        "    with open('fieldline_data/ota/state.json') as f:\n        state = json.load(f)\n"
        "    state['state'] = 'confirmed'\n"
        "    with open('fieldline_data/ota/state.json', 'w') as f:\n        json.dump(state, f)\n"
        "    print('confirmed it')\n    while True:\n        await asyncio.sleep(0.05)\n"
    ),
}

INTERPRETERS = ["esp32", "cpython"]


def staged_board(tmp_path: Path, new_app: str, trial_s: float = 1) -> Path:
    config = device_config("dev-boot-ota", 1, ota={"trial_s": trial_s, "trial_boots": 3})
    board = build_board(tmp_path / "board", config)
    (board / "app.py").write_text(OLD_APP)
    (board / "version.json").write_text('{"version": "1.0.0"}')
    new = board / "fieldline_data" / "ota" / "new"
    new.mkdir(parents=True)
    (new / "app.py").write_text(new_app)
    (new / "version.json").write_text('{"version": "1.1.0"}')
    state = {"state": "staged", "bundle": "b" * 64, "version": "1.1.0", "rollout": "ro-x",
             "files": ["app.py", "version.json"]}  # fmt: skip
    (board / "fieldline_data" / "ota" / "state.json").write_text(json.dumps(state))
    return board


def boot(board: Path, interpreter: str) -> BoardProcess:
    if interpreter == "esp32":
        require_esp32_micropython()
        return BoardProcess(board, heapsize=ESP32_HEAP, interpreter=str(ESP32_MICROPYTHON))
    return BoardProcess(board, interpreter="cpython")


def state_of(board: Path) -> dict:
    return json.loads((board / "fieldline_data" / "ota" / "state.json").read_text())


def wait_exit(process: BoardProcess, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while process.process.poll() is None:
        assert time.monotonic() < deadline, process.console()[-3000:]
        time.sleep(0.05)


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_new_version_that_raises_at_import_is_rolled_back_in_the_same_boot(tmp_path, interpreter):
    board = staged_board(tmp_path, NEW_APPS["raises at import"])
    process = boot(board, interpreter)
    try:
        process.wait_for_line("old app running", 20)
        console = process.console()
        assert "switching to version 1.1.0" in console and "on trial (boot 1)" in console
        assert "new app running" not in console
    finally:
        process.kill()
    state = state_of(board)
    assert state["state"] == "rolled_back", state
    assert state["error"] == "ValueError: broken at import", state
    assert (board / "app.py").read_text() == OLD_APP
    assert json.loads((board / "version.json").read_text()) == {"version": "1.0.0"}


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_new_version_that_stops_is_rolled_back_and_the_board_resets(tmp_path, interpreter):
    board = staged_board(tmp_path, NEW_APPS["stops"])
    process = boot(board, interpreter)
    wait_exit(process)  # port.reset(): the process ends, as a board resets
    assert "new app running" in process.console()
    state = state_of(board)
    assert state["state"] == "rolled_back" and state["error"] == "RuntimeError: stopped", state
    process = boot(board, interpreter)  # the board's next boot: the old version
    try:
        process.wait_for_line("old app running", 20)
    finally:
        process.kill()


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_new_version_not_confirmed_in_time_is_rolled_back(tmp_path, interpreter):
    board = staged_board(tmp_path, NEW_APPS["never confirms"], trial_s=1)
    started = time.monotonic()
    process = boot(board, interpreter)
    wait_exit(process)
    assert time.monotonic() - started >= 1
    assert "new app running" in process.console()
    state = state_of(board)
    assert state["state"] == "rolled_back", state
    assert state["error"] == "not confirmed within 1 s", state
    assert (board / "app.py").read_text() == OLD_APP


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_confirmed_version_keeps_running_past_the_deadline(tmp_path, interpreter):
    board = staged_board(tmp_path, NEW_APPS["confirms"], trial_s=1)
    process = boot(board, interpreter)
    try:
        process.wait_for_line("confirmed it", 20)
        time.sleep(2)
        assert process.process.poll() is None, process.console()
    finally:
        process.kill()
    assert state_of(board)["state"] == "confirmed"
    assert (board / "app.py").read_text() == NEW_APPS["confirms"]


def test_a_version_that_never_gets_confirmed_is_rolled_back_after_three_boots(tmp_path):
    board = staged_board(tmp_path, NEW_APPS["never confirms"], trial_s=600)
    for n in (1, 2, 3):  # each boot is cut (a power cut or a crash) before a confirmation
        process = boot(board, "esp32")
        process.wait_for_line("new app running", 20)
        process.kill()
        assert state_of(board)["boots"] == n
    process = boot(board, "esp32")
    try:
        process.wait_for_line("old app running", 20)
    finally:
        process.kill()
    state = state_of(board)
    assert state["state"] == "rolled_back" and state["error"] == "not confirmed in 3 boots"


def test_a_normal_boot_does_not_import_the_loader(tmp_path):
    config = device_config("dev-boot-plain", 1)
    board = build_board(tmp_path / "board", config)
    (board / "app.py").write_text(
        'import sys, time\nprint("loader imported:", "loader" in sys.modules)\n\n\n'
        "def run():\n    while True:\n        time.sleep(0.05)\n"
    )
    process = boot(board, "esp32")
    try:
        process.wait_for_line("loader imported: False", 20)
    finally:
        process.kill()
