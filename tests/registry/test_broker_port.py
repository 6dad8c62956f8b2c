"""The broker port's contract, run against both adapters without the rest of the stack:
a real private Mosquitto kept through its files + SIGHUP, and the embedded amqtt broker.
Whatever `apply()` installs is exactly what the broker admits."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldline_backend.infra.broker import BrokerAccount, topics
from fieldline_backend.infra.broker.embedded import EmbeddedBroker
from fieldline_backend.infra.broker.mosquitto import MosquittoFiles
from fieldline_backend.infra.broker.passwords import hash_password
from fieldline_backend.infra.broker.probe import connack_code
from fieldline_backend.mqtt_auth import acl
from tests.support.servers import MosquittoInstance, free_port


class LoopThread:
    """An asyncio loop in a thread, so sync tests can drive async adapters."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class AdapterUnderTest:
    kind: str
    adapter: Any
    port: int
    loop: LoopThread

    def apply(self, accounts: list[BrokerAccount]) -> None:
        self.loop.run(self.adapter.apply(accounts))

    def connack(self, username: str, password: str) -> int:
        return self.loop.run(connack_code("127.0.0.1", self.port, username, username, password))


def device_account(username: str, password: str) -> BrokerAccount:
    rules = acl.device_rules(username)
    return BrokerAccount(
        username=username,
        password_hash=hash_password(password),
        publish=tuple(topic for access, topic in rules if access == acl.PUBLISH),
        subscribe=tuple(topic for access, topic in rules if access == acl.SUBSCRIBE),
    )


@pytest.fixture(params=["real", "embedded"])
def adapter(request, tmp_path) -> Iterator[AdapterUnderTest]:
    loop = LoopThread()
    backend = device_account("fieldline-backend", secrets.token_urlsafe(16))
    try:
        if request.param == "real":
            broker = MosquittoInstance(tmp_path / "mosquitto", free_port()).start()
            files = MosquittoFiles(
                broker.password_file, broker.acl_file, broker.pid_file, ("127.0.0.1", broker.port)
            )
            try:
                yield AdapterUnderTest("real", files, broker.port, loop)
            finally:
                broker.stop()
        else:
            embedded = EmbeddedBroker("127.0.0.1", free_port(), backend)
            loop.run(embedded.start())
            try:
                yield AdapterUnderTest("embedded", embedded, embedded.port, loop)
            finally:
                loop.run(embedded.stop())
    finally:
        loop.close()


PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=64,
)


@given(password=PASSWORDS, other=PASSWORDS)
def test_an_applied_hash_admits_its_password_and_refuses_any_other(adapter, password, other):
    username = f"dev-{secrets.token_hex(4)}"
    adapter.apply([device_account(username, password)])
    assert adapter.connack(username, password) == 0, "the hashed password was refused"
    if other != password:
        assert adapter.connack(username, other) != 0, "another password was admitted"


def test_only_the_applied_accounts_are_admitted(adapter):
    first, second = f"dev-{secrets.token_hex(4)}", f"dev-{secrets.token_hex(4)}"
    adapter.apply([device_account(first, "pw-1"), device_account(second, "pw-2")])
    assert adapter.connack(first, "pw-1") == 0 and adapter.connack(second, "pw-2") == 0
    adapter.apply([device_account(second, "pw-2")])
    assert adapter.connack(first, "pw-1") != 0, "a removed account is still admitted"
    assert adapter.connack(second, "pw-2") == 0


def test_open_connections_survive_a_rehash_and_close_on_a_new_password(adapter, mqtt_client):
    username = f"dev-{secrets.token_hex(4)}"
    adapter.apply([device_account(username, "same")])
    where = SimpleNamespace(mqtt_address=("127.0.0.1", adapter.port))
    client = mqtt_client(where, username, username, "same")
    assert client.connect()
    adapter.apply([device_account(username, "same")])  # new salt, same password
    # (no probe CONNECT here: with the same client id it would take the session over)
    # A round trip on the open connection proves the broker kept it.
    assert client.subscribe(f"devices/{username}/commands") == 1
    assert client.connected and not client.disconnects, "a rehash closed the connection"
    adapter.apply([device_account(username, "changed")])
    assert client.wait_disconnected(5.0) <= 5.0
    assert adapter.connack(username, "same") != 0


# ---- pure parts: topic matching and the hash format ----------------------------------


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        ("devices/d1/commands", "devices/d1/commands", True),
        ("devices/d1/commands", "devices/d2/commands", False),
        ("devices/d1/commands", "devices/+/commands", False),
        ("devices/d1/commands", "devices/#", False),
        ("devices/+/telemetry", "devices/d9/telemetry", True),
        ("devices/+/telemetry", "devices/+/telemetry", True),
        ("devices/+/telemetry", "devices/#", False),
        ("devices/d1/#", "devices/d1/status", True),
        ("devices/d1/#", "devices/d1/#", True),
        ("devices/d1/#", "devices/+/status", False),
    ],
)
def test_filter_covers(allowed, requested, covered):
    assert topics.filter_covers(allowed, requested) is covered


@pytest.mark.parametrize(
    ("topic_filter", "topic", "matches"),
    [
        ("devices/d1/#", "devices/d1/telemetry", True),
        ("devices/d1/#", "devices/d2/telemetry", False),
        ("devices/+/status", "devices/d2/status", True),
        ("devices/+/status", "devices/d2/status/x", False),
        ("devices/d1/commands", "devices/d1/commands", True),
    ],
)
def test_topic_matches(topic_filter, topic, matches):
    assert topics.topic_matches(topic_filter, topic) is matches


def test_shared_subscription_prefix_is_stripped():
    assert (
        topics.strip_shared_prefix("$share/ingestors/devices/+/telemetry") == "devices/+/telemetry"
    )
    assert topics.strip_shared_prefix("devices/+/status") == "devices/+/status"


def test_hash_format_is_mosquittos_pbkdf2_sha512():
    from fieldline_backend.infra.broker.passwords import verify_password

    encoded = hash_password("secret")
    kind, iterations, salt, digest = encoded.split("$")[1:]
    assert kind == "7" and int(iterations) >= 101
    assert len(__import__("base64").b64decode(salt)) == 12
    assert len(__import__("base64").b64decode(digest)) == 64
    assert verify_password("secret", encoded) and not verify_password("Secret", encoded)
    for broken in ("", "$7$", "$6$1$YQ==$YQ==", "$7$x$YQ==$YQ==", "$7$10$!!$YQ==", "plain"):
        assert not verify_password("secret", broken)


def test_files_are_replaced_keeping_their_mode_and_new_ones_are_not_world_readable(tmp_path):
    from fieldline_backend.infra.broker.mosquitto import write_atomically

    existing = tmp_path / "passwords"
    existing.write_text("old\n")
    existing.chmod(0o604)
    write_atomically(existing, "new\n")
    assert existing.read_text() == "new\n"
    assert existing.stat().st_mode & 0o777 == 0o604
    fresh = tmp_path / "acl"
    write_atomically(fresh, "user x\n")
    assert fresh.stat().st_mode & 0o007 == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_files_written_while_mosquitto_is_down_are_read_when_it_starts(tmp_path):
    broker = MosquittoInstance(tmp_path / "mosquitto", free_port())
    broker.write_config()  # creates the empty password and ACL files; not started
    files = MosquittoFiles(
        broker.password_file, broker.acl_file, broker.pid_file, ("127.0.0.1", broker.port)
    )
    loop = LoopThread()
    try:
        loop.run(files.apply([device_account("dev-early", "early-pw")]), timeout=3)
        assert "dev-early:$7$" in broker.password_file.read_text()
        broker.start()
        try:
            code = loop.run(
                connack_code("127.0.0.1", broker.port, "dev-early", "dev-early", "early-pw")
            )
            assert code == 0
        finally:
            broker.stop()
    finally:
        loop.close()
