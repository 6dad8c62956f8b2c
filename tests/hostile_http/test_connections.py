"""Issue 13 item 8: slow HTTP connections cannot take every descriptor of `fieldline up`.

The process starts with a small descriptor ceiling (soft 1024, hard 1500; it raises the
soft limit to the hard one) and a bound of 200
HTTP connections, so a few thousand loopback sockets prove what 20k did to the default
ceiling: before the fix they used every descriptor and /healthz and the MQTT broker (same
process) stopped answering."""

from __future__ import annotations

import socket
import time

import pytest

from tests.hostile_http.attacker import attack
from tests.hostile_http.process import FieldlineUp, healthz_seconds, mqtt_connack_seconds

BOUND = 200
NOFILE = 1500
HEADER_TIMEOUT = 1.5
IDLE_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    up = FieldlineUp(
        tmp_path_factory.mktemp("connections") / "data",
        nofile=(1024, NOFILE),
        http_max_connections=BOUND,
        http_header_timeout=HEADER_TIMEOUT,
        http_idle_timeout=IDLE_TIMEOUT,
        http_max_header_bytes=4096,
    )
    yield up
    up.stop()


def test_the_process_raises_its_soft_open_files_limit_to_the_hard_one(server):
    assert server.open_files_limit() == (NOFILE, NOFILE), "expected soft raised to hard"


def test_healthz_and_mqtt_answer_within_a_second_through_3000_slow_connections(server):
    probes, most_fds = [], 0
    with attack(server.http_port, total=3000, per_second=1500, seconds=5) as counts:
        time.sleep(0.5)
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            probes.append(("healthz", *healthz_seconds(server.base_url, timeout=3)))
            probes.append(("mqtt", *mqtt_connack_seconds(server.mqtt_port, timeout=3)))
            most_fds = max(most_fds, server.open_fds())
            time.sleep(0.2)
    opened, closed = counts["opened"], counts["closed_by_server"]
    slow = [p for p in probes if p[2] >= 1.0 or p[1] not in (200, b"\x20\x02")]
    assert not slow, f"expected every probe answered within 1 s; late or failed: {slow[:10]}"
    assert opened >= 3000, f"the attack opened {opened} connections only"
    assert closed >= opened - BOUND - 50, f"{opened} opened, only {closed} closed by the server"
    # The HTTP bound plus what the process holds anyway (databases, broker, probes).
    assert most_fds < BOUND + 250, f"expected under {BOUND + 250} descriptors, saw {most_fds}"


def test_a_head_trickled_byte_by_byte_is_closed_at_the_header_deadline(server):
    with socket.create_connection(("127.0.0.1", server.http_port)) as sock:
        sock.settimeout(0.3)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < HEADER_TIMEOUT + 4:
            try:
                sock.sendall(b"X-a: b\r\n")
                if sock.recv(100) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, f"still open {HEADER_TIMEOUT + 4} s into a trickled head"
    assert HEADER_TIMEOUT - 0.3 < closed_after < HEADER_TIMEOUT + 1.5, closed_after


def busy_upload(port: int, token: str) -> socket.socket:
    """A connection in the middle of a request body (a slow upload): not evictable."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /internal/mqtt-accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Fieldline-Internal: {token}\r\nContent-Length: 1000\r\n\r\n{{".encode()
    )
    return sock


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(100) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_at_the_bound_of_busy_connections_a_new_one_gets_503_then_idle_ones_close(server):
    uploads = []
    try:
        for _ in range(BOUND):
            uploads.append(busy_upload(server.http_port, server.internal_token))
        time.sleep(0.5)
        # The process's own clients (services calling each other over HTTP) may hold a
        # kept-alive idle connection: each new one evicts such a connection first. Once
        # none is left, the next is refused with a 503 at once.
        probes = []
        for _ in range(10):
            probes.append(healthz_seconds(server.base_url))
            if probes[-1][0] == 503:
                break
        status, seconds = probes[-1]
        assert (status, seconds < 1) == (503, True), f"expected a prompt 503, got {probes}"
        alive = sum(still_open(sock) for sock in uploads)
        assert alive >= BOUND - len(probes), f"busy uploads closed: {BOUND - alive} of {BOUND}"
        # The uploads then stay silent past the idle timeout: closed, and room again.
        time.sleep(IDLE_TIMEOUT + 0.7)
        status, _ = healthz_seconds(server.base_url)
        assert status == 200, f"expected /healthz to answer once idle uploads closed: {status}"
        for sock in uploads[:5]:
            sock.settimeout(1)
            assert sock.recv(100) == b"", "an idle upload was still open"
    finally:
        for sock in uploads:
            sock.close()


def test_a_head_over_the_header_size_limit_is_a_431(server):
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        answer = sock.recv(100)
    assert answer.startswith(b"HTTP/1.1 431"), f"expected 431 for an 8 kB head, got {answer!r}"
