"""Configuration from FIELDLINE_* environment variables and an optional TOML file.

An unset URL means the embedded default (SQLite, amqtt, local queue, SQLite series,
maildir), all kept under the data dir. This module is the only place that reads the
environment; everything else receives a Settings instance.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SERVICES = ("gateway", "devices", "mqtt_auth", "ingestor", "storage", "monitor", "alerts")

PLACEHOLDER_SECRETS = {"changeme", "change-me", "secret", "password", ""}


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("fieldline", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FIELDLINE_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    config: Path | None = None  # optional TOML file, FIELDLINE_CONFIG

    # Infrastructure: None = embedded default.
    database_url: str | None = None
    mqtt_url: str | None = None
    amqp_url: str | None = None
    influx_url: str | None = None
    influx_database: str = "telemetry"
    influx_token: str | None = None
    influx_retention: str = "INF"
    smtp_url: str | None = None
    mail_from: str = "Fieldline <fieldline@localhost>"

    # This process.
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mqtt_port: int = 1883  # the embedded broker's port
    # The embedded broker's limits (docs/broker.md); Mosquitto's own live in its config.
    # max_packet_size as Mosquitto's in deploy/mosquitto/fieldline.conf (64 KiB payload + topic).
    mqtt_max_packet_size: int = 70000
    # A socket that has not sent a whole CONNECT by then is closed (Mosquitto: ~90 s).
    mqtt_connect_timeout_s: float = 10.0
    # Open MQTT connections at most; None = half the process's file-descriptor limit, so
    # the HTTP side keeps descriptors whatever devices do. Past it a socket is closed at once.
    mqtt_max_connections: int | None = None
    public_url: str | None = None  # base URL people reach the API/UI at (links in mails)
    # Addresses (comma-separated IPs or CIDR ranges; "*" = any) of the reverse proxies whose
    # X-Forwarded-For / X-Forwarded-Proto are believed. Empty: none, the TCP peer is the
    # client (any other choice lets a caller pick the address its failed logins count
    # against). Behind Traefik: Traefik's address or its network (deploy/compose.yaml).
    trusted_proxies: str = ""

    # What devices are told to connect to (defaults derive from the broker in use).
    mqtt_public_host: str | None = None
    mqtt_public_port: int | None = None
    mqtt_public_tls: bool = False
    # PEM of the CA devices verify the broker's TLS certificate with; sent along with new
    # devices' credentials, so `provision` writes it into config.json (docs/deploy.md).
    mqtt_public_ca_file: Path | None = None

    # Mosquitto kept in step through password/ACL files reloaded with SIGHUP.
    mosquitto_password_file: Path | None = None
    mosquitto_acl_file: Path | None = None
    mosquitto_pid_file: Path | None = None

    # Base URLs of the other services; None = this same process.
    devices_url: str | None = None
    mqtt_auth_url: str | None = None
    alerts_url: str | None = None
    storage_url: str | None = None

    secret_key: str | None = None  # signs nothing yet; reserved for session cookies
    internal_token: str | None = None  # service-to-service calls on /internal
    # Also accepted on /internal (never sent): lets the token be rotated without a window
    # in which services disagree (docs/deploy.md, "Rotating secrets").
    internal_token_also_accepted: str | None = None
    access_token_minutes: int = 60
    # Failed-login limits (docs/api.md, "Failed logins"): 429 with Retry-After past them.
    login_user_limit: int = 5  # per username per window
    login_address_limit: int = 20  # per client address per window (many people behind a NAT)
    login_window_seconds: int = 300
    monitor_interval: float = 10.0

    log_format: str = "text"
    log_level: str = "INFO"
    # The log file of `fieldline up`/`demo` rotates at this size, keeping this many old
    # files; a warning or error repeated within the interval is written once with a count.
    log_file_max_bytes: int = Field(10 * 1024 * 1024, gt=0)
    log_file_backups: int = Field(5, ge=1)  # 0 would never rotate
    log_repeat_interval: float = Field(10.0, ge=0)

    # HTTP limits (docs/deploy.md, "HTTP limits"; backend/common/http_limits.py).
    http_max_body_bytes: int = Field(1024 * 1024, gt=0)  # 413 above; routes may allow more
    http_max_connections: int = Field(1000, gt=0)  # open HTTP connections; 503 above
    http_header_timeout: float = Field(10.0, gt=0)  # a request's head must arrive within
    http_idle_timeout: float = Field(30.0, gt=0)  # silence while a request body is read
    http_max_header_bytes: int = Field(16 * 1024, gt=0)  # request line + headers; 400 above

    # Monitor and alerts (docs/alerts.md). Unset secrets are generated in the data dir.
    mail_reply_to: str | None = None
    monitor_url: str | None = None
    notify_influxdb_secret: str | None = None  # POST /api/v1/notifications/influxdb
    notify_kapacitor_secret: str | None = None  # POST /api/v1/notifications/kapacitor
    monitor_late_after: float = 60.0  # a reading older than this on arrival is backlog
    monitor_max_backlog: float = 86400.0  # how far back a returning device is caught up
    alerts_retry_base: float = 2.0  # outbox backoff: base * 2^attempt, capped
    alerts_retry_max: float = 300.0
    alerts_max_attempts: int = 60  # then the message is recorded as failed

    # Telemetry pipeline (ingestor, storage): docs/pipeline.md.
    amqp_quorum: bool = False  # declare telemetry.storage as a quorum queue (clusters)
    queue_probe_timeout: float = 2.0  # each wait of a queue depth/reachability check
    ingestor_client_id: str | None = None  # fixed per replica; default from the host name
    ingestor_max_in_flight: int = 5000  # MQTT messages waiting for their queue confirm
    storage_prefetch: int = 2000
    storage_batch_size: int = 1000
    storage_batch_seconds: float = 0.02  # latency (docs/pipeline.md, section 8)
    storage_device_cache_seconds: float = 30.0
    storage_redelivery_window_seconds: float = 3600.0  # readings without ts: dedup window
    # Values per answer of the telemetry query API (and windows per range with `every`);
    # a longer answer is cut and says where the rest starts (docs/pipeline.md).
    query_max_points: int = Field(10_000, ge=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_path_from_env_or_init(init_settings)
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("log_format")
    @classmethod
    def _known_log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("FIELDLINE_LOG_FORMAT must be 'text' or 'json'")
        return value

    # ---- derived values -------------------------------------------------------------

    @property
    def http_base_url(self) -> str:
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::") else self.http_host
        return f"http://{host}:{self.http_port}"

    def service_url(self, name: str) -> str:
        """Base URL of a service: its configured URL, else this very process."""
        return getattr(self, f"{name}_url", None) or self.http_base_url

    @property
    def sqlalchemy_url(self) -> str:
        if not self.database_url:
            return f"sqlite:///{self.data_dir / 'fieldline.db'}"
        url = self.database_url
        # A plain postgresql:// URL means our driver, psycopg 3.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def embedded_broker(self) -> bool:
        return not self.mqtt_url

    @property
    def broker_address(self) -> tuple[str, int]:
        """Where backend clients (ingestor, admin) reach the broker."""
        if self.mqtt_url:
            parts = urlsplit(self.mqtt_url)
            return parts.hostname or "127.0.0.1", parts.port or 1883
        return "127.0.0.1", self.mqtt_port

    @property
    def broker_credentials(self) -> tuple[str | None, str | None]:
        if not self.mqtt_url:
            return None, None
        parts = urlsplit(self.mqtt_url)
        return parts.username, parts.password

    def device_mqtt_endpoint(self) -> dict:
        """The host/port/tls (and the CA, when configured) a new device is told to use."""
        host, port = self.broker_address
        endpoint: dict = {
            "host": self.mqtt_public_host or host,
            "port": self.mqtt_public_port or port,
            "tls": self.mqtt_public_tls,
        }
        if self.mqtt_public_ca_file is not None:
            try:
                endpoint["ca"] = self.mqtt_public_ca_file.read_text()
            except OSError as error:
                raise ValueError(
                    f"FIELDLINE_MQTT_PUBLIC_CA_FILE={self.mqtt_public_ca_file}: {error.strerror}; "
                    "point it at the CA certificate (PEM) devices should trust, "
                    "e.g. the ca.pem scripts/dev_certs.sh writes"
                ) from error
        return endpoint

    def persistent_secret(self, name: str) -> str:
        """A random secret kept in the data dir, made on first use (embedded mode)."""
        path = self.data_dir / "secrets" / name
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(32)
        path.write_text(value)
        path.chmod(0o600)
        return value

    @property
    def effective_internal_token(self) -> str:
        if self.internal_token is not None:
            if self.internal_token.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "FIELDLINE_INTERNAL_TOKEN is a placeholder; set it to a random value, "
                    "e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
            return self.internal_token
        return self.persistent_secret("internal_token")


def _toml_path_from_env_or_init(init_settings: PydanticBaseSettingsSource) -> Path | None:
    import os

    init_values = init_settings()
    value = init_values.get("config") or os.environ.get("FIELDLINE_CONFIG")
    return Path(value) if value else None


def load_settings(**overrides) -> Settings:
    """Settings from the environment (and TOML file), with CLI overrides applied."""
    clean = {key: value for key, value in overrides.items() if value is not None}
    settings = Settings(**clean)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
