"""The backend's publishes to devices (retained desired configs, commands), on either
broker: one paho-mqtt client per process under the backend's account, connected on first
use, each publish awaited until the broker's PUBACK (QoS 1).

A publish that cannot be made now (broker down, no PUBACK in time) raises
ChannelUnavailable; the caller decides (the config API answers 503, the config is
published again when the devices service starts). Nothing is queued behind the
caller's back: a publish is only handed to paho while the client is connected.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


class ChannelUnavailable(Exception):
    """The broker did not take the message now."""


class DeviceChannel:
    def __init__(self, host: str, port: int, username: str, password: str, timeout: float = 10):
        self.host, self.port = host, port
        self.timeout = timeout
        self.connected = threading.Event()
        self.started = False
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="fieldline-devices-" + secrets.token_hex(4),
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the backend's device channel: %s", reason_code)
            return
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()

    def _start(self) -> None:
        with self.lock:
            if not self.started:
                self.client.connect_async(self.host, self.port, keepalive=30)
                self.client.loop_start()
                self.started = True

    def _publish(self, topic: str, payload: bytes, retain: bool) -> None:
        self._start()
        if not self.connected.wait(self.timeout):
            raise ChannelUnavailable(f"no connection to the MQTT broker at {self.host}:{self.port}")
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            why = mqtt.error_string(info.rc)
            raise ChannelUnavailable(f"the MQTT client refused the publish: {why}")
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as error:
            raise ChannelUnavailable(f"the publish did not complete: {error}") from error
        if not info.is_published():
            raise ChannelUnavailable(f"no PUBACK from the broker within {self.timeout:.0f} s")

    async def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Returns once the broker acknowledged it; ChannelUnavailable otherwise."""
        await asyncio.to_thread(self._publish, topic, payload, retain)

    async def close(self) -> None:
        if self.started:
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)


class TopicListener:
    """A backend client that takes the messages of one topic filter (QoS 0) and answers
    with QoS 0 publishes: the bundle server's link (docs/ota.md). Its own paho client,
    so chunk traffic never waits behind the channel's acknowledged publishes.

    `on_message(topic, payload)` runs in paho's network thread: it must only hand the
    work on (e.g. asyncio.run_coroutine_threadsafe), never block. The subscription is
    made again at every (re)connect (clean session).
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        topic_filter: str,
        on_message: Callable[[str, bytes], None],
    ):
        self.host, self.port = host, port
        self.topic_filter = topic_filter
        self.on_message = on_message
        self.started = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="fieldline-bundles-" + secrets.token_hex(4),
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(username, password)
        # Short: at start the broker may not know the backend's account yet (mqtt_auth
        # installs it), and devices wait for answers meanwhile.
        self.client.reconnect_delay_set(min_delay=1, max_delay=3)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the backend's bundle server: %s", reason_code)
            return
        client.subscribe(self.topic_filter, qos=0)

    def _on_message(self, _client, _userdata, message) -> None:
        try:
            self.on_message(message.topic, bytes(message.payload))
        except Exception:  # a bad message must not stop paho's thread
            log.exception("message on %s not handled", message.topic)

    def start(self) -> None:
        if not self.started:
            self.client.connect_async(self.host, self.port, keepalive=30)
            self.client.loop_start()
            self.started = True

    def send(self, topic: str, payload: bytes) -> bool:
        """QoS 0, never waits (paho queues it for its thread); False when not connected."""
        if not self.client.is_connected():
            return False
        return self.client.publish(topic, payload, qos=0).rc == mqtt.MQTT_ERR_SUCCESS

    async def close(self) -> None:
        if self.started:
            self.client.disconnect()
            await asyncio.to_thread(self.client.loop_stop)
            self.started = False
