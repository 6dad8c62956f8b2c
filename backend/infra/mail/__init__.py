"""The mail port: hand one message to a mail system, or say why not.

Real adapter: SMTP through aiosmtplib (`smtp.py`, STARTTLS or implicit TLS, login).
Embedded default: a maildir under `<data dir>/mail` (`maildir.py`) that any mail
reader opens. The alerts service's outbox is the only caller; it retries what fails
with `MailTemporaryError` and records, without retrying, what fails with
`MailPermanentError` (a refused address).
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from fieldline_backend.common.settings import Settings


class MailError(Exception):
    """Base of the mail port's errors; the message is safe to show (no secrets)."""


class MailTemporaryError(MailError):
    """The mail system is unreachable or asked us to come back later: retry."""


class MailPermanentError(MailError):
    """The mail system refused this message for good (bad address, rejected)."""


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message to its To recipients, or raise a MailError."""

    def describe(self) -> str:
        """Where mail goes, for people (never includes a password)."""


def maildir_path(settings: Settings) -> Path:
    return settings.data_dir / "mail"


def open_mailer(settings: Settings) -> Mailer:
    """SMTP when FIELDLINE_SMTP_URL is set, else the maildir in the data dir."""
    if settings.smtp_url:
        from fieldline_backend.infra.mail.smtp import SmtpMailer

        return SmtpMailer.from_url(settings.smtp_url)
    from fieldline_backend.infra.mail.maildir import MaildirMailer

    return MaildirMailer(maildir_path(settings))
