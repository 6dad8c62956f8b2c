"""SMTP through aiosmtplib, configured by one URL.

    smtp://user:pass@host:587?starttls=1   plain connection upgraded with STARTTLS
    smtps://user:pass@host:465             implicit TLS from the first byte
    smtp://host:25                         no TLS, no login (a local relay)

`?verify=0` accepts a self-signed certificate (a test relay); never the default.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from fieldline_backend.infra.mail import MailPermanentError, MailTemporaryError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False
    verify_certs: bool = True
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(
                "FIELDLINE_SMTP_URL must start with smtp:// or smtps://, "
                "e.g. smtp://user:pass@mail.example.com:587?starttls=1"
            )
        if not parts.hostname:
            raise ValueError("FIELDLINE_SMTP_URL names no host, e.g. smtp://mail.example.com:25")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=(not implicit) and query.get("starttls", "0").lower() in _TRUE,
            verify_certs=query.get("verify", "1").lower() in _TRUE,
            timeout=float(query.get("timeout", 30)),
        )


class SmtpMailer:
    def __init__(self, config: SmtpConfig):
        self.config = config

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        return cls(SmtpConfig.from_url(url))

    def describe(self) -> str:
        c = self.config
        mode = "TLS" if c.implicit_tls else ("STARTTLS" if c.starttls else "plain")
        who = f"{c.username}@" if c.username else ""
        return f"SMTP {who}{c.host}:{c.port} ({mode})"

    async def send(self, message: EmailMessage) -> None:
        c = self.config
        tls_context = None
        if (c.implicit_tls or c.starttls) and not c.verify_certs:
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        try:
            errors, _ = await aiosmtplib.send(
                message,
                hostname=c.host,
                port=c.port,
                username=c.username,
                password=c.password,
                use_tls=c.implicit_tls,
                start_tls=c.starttls,
                validate_certs=c.verify_certs,
                tls_context=tls_context,
                timeout=c.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise MailPermanentError(_describe_refusals(error.recipients)) from None
        except aiosmtplib.SMTPSenderRefused as error:
            raise _by_code(error.code, f"sender refused: {error.message}") from None
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials are an operator's fix; keep retrying so mail is not lost.
            raise MailTemporaryError(
                f"SMTP login refused ({error.code}); check the user and password "
                "in FIELDLINE_SMTP_URL"
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, f"SMTP said {error.code} {error.message}") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise MailTemporaryError(
                f"SMTP server {c.host}:{c.port} unreachable: {type(error).__name__}: {error}"
            ) from None
        if errors:
            # Some recipients refused, others accepted: the accepted ones have it.
            refused = {addr: resp for addr, resp in errors.items()}
            raise MailPermanentError(
                "; ".join(f"{a} refused: {r.code} {r.message}" for a, r in refused.items())
            )


def _by_code(code: int, text: str) -> Exception:
    # 5xx is a final answer; 4xx (and anything odd) means try again later.
    return MailPermanentError(text) if 500 <= code < 600 else MailTemporaryError(text)


def _describe_refusals(recipients) -> str:
    parts = []
    for refusal in recipients:
        parts.append(f"{refusal.recipient} refused: {refusal.code} {refusal.message}")
    return "; ".join(parts) or "all recipients refused"
