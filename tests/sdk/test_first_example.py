"""docs/sdk.md's first example, run as written under MicroPython: a reading reaches the
broker (issue 14, item 6). And the two ways to get it wrong say what to do."""

from __future__ import annotations

import re
import subprocess
import time

from tests.sdk.board import (
    ROOT,
    BoardProcess,
    Collector,
    build_board,
    device_config,
    micropython_path,
    new_device_id,
)


def first_example() -> str:
    text = (ROOT / "docs" / "sdk.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_docs_first_example_sends_a_reading(anonymous_mosquitto, tmp_path):
    device_id = new_device_id("docs")
    collector = Collector(anonymous_mosquitto.port, device_id)
    board = build_board(tmp_path / "board", device_config(device_id, anonymous_mosquitto.port))
    (board / "example.py").write_text(first_example())
    process = BoardProcess(board, script="example.py", micropypath="lib:.:.frozen")
    try:
        deadline = time.monotonic() + 30
        while not collector.telemetry():
            assert process.process.poll() is None, process.console()
            assert time.monotonic() < deadline, f"no reading in 30 s:\n{process.console()}"
            time.sleep(0.1)
        assert collector.telemetry()[0]["values"] == {"temperature": 21.5, "door": False}
        assert "not running" not in process.console()
    finally:
        process.kill()
        collector.client.disconnect()


def run(board, script: str, micropypath: str) -> str:
    (board / "script.py").write_text(script)
    result = subprocess.run(
        [str(micropython_path()), "script.py"],
        cwd=board,
        env={"MICROPYPATH": micropypath},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def test_publishing_without_the_loop_and_a_path_without_asyncio_name_the_fix(tmp_path):
    board = build_board(tmp_path / "board", device_config(new_device_id("docs"), 1))
    no_loop = 'from fieldline import Device\nDevice("config.json").publish({"t": 1})\n'
    output = run(board, no_loop, "lib:.:.frozen")
    assert "the network loop is not running" in output and "asyncio.run" in output, output
    output = run(board, "import fieldline\n", "lib:.")
    assert "MICROPYPATH=lib:.:.frozen" in output, output
    assert "uasyncio" not in output, output
