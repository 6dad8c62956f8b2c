"""A real SMTP server for the tests (aiosmtpd) that records what it accepted, on a
port of our own so a test may stop and start it; optionally with STARTTLS, implicit
TLS, login, and addresses it refuses for good."""

from __future__ import annotations

import datetime
import email
import email.policy
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.servers import free_port, wait_for


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage


@dataclass
class RecordingHandler:
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        tls: str | None = None,  # None, "starttls", "implicit"
        login: tuple[str, str] | None = None,
        refuse: set[str] | None = None,
    ):
        self.port = port or free_port()
        self.handler = RecordingHandler(refuse=set(refuse or ()))
        self.tls, self.login = tls, login
        self.context = None
        if tls:
            cert, key = self_signed(workdir / "tls")
            self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.context.load_cert_chain(cert, key)
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, data):
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpServer:
        kwargs: dict = {}
        if self.tls == "starttls":
            kwargs.update(tls_context=self.context, require_starttls=True)
        elif self.tls == "implicit":
            kwargs.update(ssl_context=self.context)
        if self.login:
            kwargs.update(
                authenticator=self._authenticate,
                auth_required=True,
                # With implicit TLS aiosmtpd does not count the session as TLS for
                # AUTH; the connection is encrypted from the first byte anyway.
                auth_require_tls=self.tls == "starttls",
            )
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            **kwargs,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def wait_count(self, count: int, timeout: float = 30.0) -> list[Received]:
        wait_for(
            lambda: len(self.messages) >= count, timeout, f"{count} mail(s) at the SMTP server"
        )
        return self.messages
