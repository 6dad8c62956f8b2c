"""Issue 13 item 8 (the log): a repeated warning is written once per interval with a
count, and the log file of `fieldline up` rotates at a size. 950k lines (424 MB) in 80 s
is what a flood of bad clients wrote before."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from fieldline_backend.common import logs
from tests.hostile_http.process import FieldlineUp


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "x", "levelno": level, "msg": msg, "args": args})


def test_a_repeated_error_passes_once_per_interval_and_then_says_how_often():
    clock = Clock()
    repeats = logs.RepeatFilter(10.0, clock)
    passed = []
    for i in range(1235):
        clock.now += 0.005  # 1235 errors in about 6 s
        one = record("connection from %s refused", f"10.0.0.{i % 250}")
        if repeats.filter(one):
            passed.append(one.getMessage())
    clock.now += 10
    later = record("connection from %s refused", "10.0.0.1")
    assert repeats.filter(later)
    assert passed == ["connection from 10.0.0.0 refused"], passed
    assert "(repeated 1234 times in" in later.getMessage(), later.getMessage()
    info = record("device %s connected", "d", level=logging.INFO)
    assert all(repeats.filter(info) for _ in range(5)), "INFO records are never held back"


def test_setup_logging_rotates_the_file_at_its_size(tmp_path):
    log_file = tmp_path / "logs" / "fieldline.log"
    logs.setup_logging(log_file=log_file, console=False, max_bytes=5000, backups=2)
    try:
        for i in range(500):
            logging.getLogger("test.rotation").info("line %d %s", i, "x" * 40)
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
    files = sorted(path.name for path in log_file.parent.iterdir())
    assert files == ["fieldline.log", "fieldline.log.1", "fieldline.log.2"], files
    sizes = {path.name: path.stat().st_size for path in log_file.parent.iterdir()}
    assert all(size <= 5000 for size in sizes.values()), sizes


MAX_BYTES = 1000


def log_files(server: FieldlineUp) -> dict[str, str]:
    return {path.name: path.read_text() for path in server.log_file.parent.iterdir()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    up = FieldlineUp(
        tmp_path_factory.mktemp("logs") / "data",
        http_header_timeout=0.5,
        log_file_max_bytes=MAX_BYTES,  # startup alone writes about 3 kB
        log_file_backups=2,
        log_repeat_interval=60,
    )
    yield up
    up.stop()


def test_fieldline_up_logs_a_flood_of_slow_connections_in_a_few_lines(server):
    sockets = []
    for _ in range(300):  # each closed at the header deadline: 300 warnings, once
        sock = socket.create_connection(("127.0.0.1", server.http_port))
        sock.sendall(b"GET / HTTP/1.1\r\n")
        sockets.append(sock)
    time.sleep(1.5)
    for sock in sockets:
        sock.close()
    lines = "".join(log_files(server).values()).splitlines()
    deadline_lines = [line for line in lines if "no complete request head" in line]
    assert len(deadline_lines) == 1, f"expected one line for 300 deadlines: {deadline_lines[:5]}"


def test_fieldline_up_rotates_its_log_file(server):
    files = log_files(server)
    assert sorted(files) == ["fieldline.log", "fieldline.log.1", "fieldline.log.2"], sorted(files)
    for name, text in files.items():
        # A file is cut before the record that would take it past the size (a single
        # record longer than that is still written whole).
        size = len(text.encode())
        assert size <= MAX_BYTES or text.count("\n") == 1, f"{name}: {size} bytes"
