"""A boot never ends silently (issue 14, item 3): when the app cannot start, main.py says
why, writes it to boot_error.txt and tries again with the heap collected, leaving Ctrl-C to
the host; once the cause is gone the app runs. On the ESP32-sized interpreter."""

from __future__ import annotations

import json
import time

from tests.sdk.board import (
    ESP32_MICROPYTHON,
    BoardProcess,
    Collector,
    build_board,
    device_config,
    new_device_id,
)


def test_out_of_memory_at_boot_is_said_recorded_and_retried(tmp_path):
    board = build_board(tmp_path / "board", device_config(new_device_id("oom"), 1))
    process = BoardProcess(board, heapsize="40K", interpreter=str(ESP32_MICROPYTHON))
    try:
        process.wait_for_line("fieldline: the app stopped (attempt 1: MemoryError", 20)
        assert "retrying in 5 s, Ctrl-C for the REPL" in process.console()
        time.sleep(1)
        assert process.process.poll() is None, "main.py ended: the board would be dead"
        assert "MemoryError" in (board / "boot_error.txt").read_text()
    finally:
        process.kill()


def test_the_app_starts_on_the_next_attempt_once_the_cause_is_gone(anonymous_mosquitto, tmp_path):
    device_id = new_device_id("retry")
    collector = Collector(anonymous_mosquitto.port, device_id)
    board = build_board(tmp_path / "board", device_config(device_id, anonymous_mosquitto.port))
    config = (board / "config.json").read_text()
    (board / "config.json").unlink()  # attempt 1 fails: nothing to connect with
    process = BoardProcess(board, heapsize="111936", interpreter=str(ESP32_MICROPYTHON))
    try:
        process.wait_for_line("fieldline: the app stopped (attempt 1: OSError", 20)
        (board / "config.json").write_text(config)
        deadline = time.monotonic() + 30
        while not collector.telemetry():
            assert time.monotonic() < deadline, process.console()
            time.sleep(0.1)
        assert json.loads(config)["device_id"] == device_id
        assert "attempt 2" not in process.console()
    finally:
        process.kill()
        collector.client.disconnect()
