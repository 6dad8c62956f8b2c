"""The one typed set of adapters a process uses, chosen from the settings.

The composition root (app.build_adapters) makes one `Adapters` and hands it to every
service's `build(ctx, adapters)`. Building it connects to nothing: queue, time-series
and mail adapters are opened by the service that uses them, when it starts; the broker
adapters are made on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from fieldline_backend.common.settings import Settings
from fieldline_backend.infra import queue
from fieldline_backend.infra.broker import BrokerAccess, backend_account

if TYPE_CHECKING:
    from fieldline_backend.infra.broker.channel import DeviceChannel, TopicListener
    from fieldline_backend.infra.broker.embedded import EmbeddedBroker
    from fieldline_backend.infra.mail import Mailer
    from fieldline_backend.infra.timeseries import TimeSeriesStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adapters:
    settings: Settings
    # amqtt plugins the embedded broker loads (dotted class path -> config), known before
    # anything is built: the ingestor's telemetry capture.
    broker_plugins: Mapping[str, dict] = field(default_factory=dict)

    # ---- queue (infra/queue) ---------------------------------------------------------

    def open_publisher(self) -> queue.TelemetryPublisher:
        return queue.open_publisher(self.settings)

    def open_consumer(self, prefetch: int) -> queue.TelemetryConsumer:
        return queue.open_consumer(self.settings, prefetch=prefetch)

    def open_dead_letters(self) -> queue.DeadLetterBox:
        return queue.open_dead_letters(self.settings)

    @cached_property
    def queue_probe(self) -> queue.QueueProbe:
        """Queue depths and reachability for /metrics and /readyz."""
        return queue.open_probe(self.settings)

    # ---- time series and mail --------------------------------------------------------

    def open_timeseries(self) -> TimeSeriesStore:
        from fieldline_backend.infra.timeseries import open_timeseries

        return open_timeseries(self.settings)

    def open_mailer(self) -> Mailer:
        from fieldline_backend.infra.mail import open_mailer

        return open_mailer(self.settings)

    # ---- MQTT broker (infra/broker) --------------------------------------------------

    @cached_property
    def embedded_broker(self) -> EmbeddedBroker | None:
        """The in-process amqtt on the embedded defaults (not started: app's lifespan
        starts it), else None."""
        if not self.settings.embedded_broker:
            return None
        from fieldline_backend.infra.broker.embedded import EmbeddedBroker
        from fieldline_backend.infra.broker.guarded import BrokerLimits, default_max_connections

        settings = self.settings
        account = backend_account(settings)
        assert account is not None  # embedded credentials are always generated
        return EmbeddedBroker(
            host=settings.http_host,
            port=settings.mqtt_port,
            backend=account,
            extra_plugins=dict(self.broker_plugins),
            limits=BrokerLimits(
                max_packet_size=settings.mqtt_max_packet_size,
                connect_timeout_s=settings.mqtt_connect_timeout_s,
                max_connections=settings.mqtt_max_connections or default_max_connections(),
            ),
        )

    def open_device_channel(self) -> DeviceChannel | None:
        """The backend's publisher to devices (configs, commands) under its own account;
        None when FIELDLINE_MQTT_URL carries no credentials (said in the log)."""
        from fieldline_backend.infra.broker import backend_credentials
        from fieldline_backend.infra.broker.channel import DeviceChannel

        try:
            username, password = backend_credentials(self.settings)
        except ValueError as error:
            log.warning("no device channel: %s", error)
            return None
        host, port = self.settings.broker_address
        return DeviceChannel(host, port, username, password)

    def open_device_listener(self, topic_filter: str, on_message) -> TopicListener | None:
        """A backend client taking what devices publish on `topic_filter` (the bundle
        server's requests), shared by the replicas on Mosquitto (amqtt delivers nothing
        to $share, and runs in one process); None without the backend's credentials."""
        from fieldline_backend.infra.broker import backend_credentials
        from fieldline_backend.infra.broker.channel import TopicListener

        try:
            username, password = backend_credentials(self.settings)
        except ValueError as error:
            log.warning("no device listener: %s", error)
            return None
        if self.settings.mqtt_url:
            topic_filter = "$share/fieldline-devices/" + topic_filter
        host, port = self.settings.broker_address
        return TopicListener(host, port, username, password, topic_filter, on_message)

    @cached_property
    def broker(self) -> BrokerAccess:
        """The broker port mqtt_auth keeps in step: the in-process amqtt, Mosquitto's
        files, or none."""
        if self.embedded_broker is not None:
            return self.embedded_broker
        from fieldline_backend.infra.broker.mosquitto import MosquittoFiles, UnmanagedBroker

        settings = self.settings
        if settings.mosquitto_password_file and settings.mosquitto_acl_file:
            return MosquittoFiles(
                password_file=settings.mosquitto_password_file,
                acl_file=settings.mosquitto_acl_file,
                pid_file=settings.mosquitto_pid_file,
                address=settings.broker_address,
                tls=(settings.mqtt_url or "").startswith(("mqtts:", "ssl:")),
            )
        log.warning(
            "FIELDLINE_MQTT_URL is set but FIELDLINE_MOSQUITTO_PASSWORD_FILE / _ACL_FILE are "
            "not: device accounts are kept in the database only and the broker is not "
            "updated; set both (and FIELDLINE_MOSQUITTO_PID_FILE) to let mqtt_auth manage it"
        )
        return UnmanagedBroker()
