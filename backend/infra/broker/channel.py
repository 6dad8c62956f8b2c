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
