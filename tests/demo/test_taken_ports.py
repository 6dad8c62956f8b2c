"""The demo is the one command that must just work: with something already on 1883 and
8000 (a system Mosquitto, another web app) it takes free ports, says so, runs and mails.
A port the user chose stays theirs: taken is an error naming the fix."""

from __future__ import annotations

import contextlib
import re
import socket

import pytest

from tests.demo.process import FIELDLINE, DemoProcess, api, mail_subjects, wait_until


@contextlib.contextmanager
def taken(*ports: int):
    """Each port has a listener for the duration: ours, or whoever already holds it."""
    with contextlib.ExitStack() as stack:
        for port in ports:
            holder = stack.enter_context(socket.socket())
            try:
                holder.bind(("0.0.0.0", port))
                holder.listen()
            except OSError:
                with socket.socket() as probe:  # taken already: make sure by whom is moot
                    assert probe.connect_ex(("127.0.0.1", port)) == 0, (
                        f"{port} neither free nor listening"
                    )
        yield


def guide_port(guide: str, label: str) -> int:
    match = re.search(rf"^\s*{label}\s+\S*?:(\d+)", guide, re.MULTILINE)
    assert match, guide
    return int(match.group(1))


def test_demo_moves_off_taken_default_ports_and_still_mails(tmp_path):
    data = tmp_path / "data"
    with taken(1883, 8000):
        demo = DemoProcess([*FIELDLINE, "demo", "--data-dir", str(data), "--speed", "60"])
        try:
            guide = demo.wait_for_guide(60)
            http_port, mqtt_port = guide_port(guide, "API"), guide_port(guide, "MQTT")
            assert (http_port, mqtt_port) != (8000, 1883) and 8000 != http_port != mqtt_port != 1883
            assert f"port 1883 was taken: MQTT broker on {mqtt_port}" in guide
            assert f"port 8000 was taken: HTTP API on {http_port}" in guide
            with api(f"http://127.0.0.1:{http_port}", demo.token()) as client:
                assert len(client.get("/devices").json()) == 5

            def threshold_mail():
                subjects = mail_subjects(data)
                return any(
                    s.startswith("[CRIT] Greenhouse: temperature") for s in subjects
                ), subjects

            wait_until(threshold_mail, 75, "the threshold alert mail")
            code, _ = demo.interrupt()
            assert code == 0, demo.output
        finally:
            demo.kill()


@pytest.mark.parametrize(("option", "port"), [("--mqtt-port", 1883), ("--http-port", 8000)])
def test_a_taken_port_the_user_chose_is_an_error_naming_the_fix(tmp_path, option, port):
    with taken(port):
        demo = DemoProcess([*FIELDLINE, "demo", "--data-dir", str(tmp_path), option, str(port)])
        code = demo.wait(30)
    assert code != 0
    assert f"port {port}" in demo.output and "already in use" in demo.output, demo.output
    assert f"{option} {port + 1}" in demo.output, demo.output
