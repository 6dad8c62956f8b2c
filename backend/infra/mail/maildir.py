"""The embedded mail adapter: each message becomes a file in a standard maildir.

`<data dir>/mail/{tmp,new,cur}`: written to tmp/ and renamed into new/ (Python's
mailbox module), so a mail reader (`mutt -f <dir>`) never sees half a message.
"""

from __future__ import annotations

import asyncio
import mailbox
from email.message import EmailMessage
from pathlib import Path

from fieldline_backend.infra.mail import MailTemporaryError


class MaildirMailer:
    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self) -> str:
        return f"maildir {self.path}"

    def _deliver(self, message: EmailMessage) -> None:
        # Made here, idempotently: Maildir(create=True) mkdirs without exist_ok, so two
        # first sends at once (the outbox sends concurrently) failed with "File exists".
        for folder in ("tmp", "new", "cur"):
            (self.path / folder).mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=False)
        box.add(mailbox.MaildirMessage(message))

    async def send(self, message: EmailMessage) -> None:
        try:
            await asyncio.to_thread(self._deliver, message)
        except OSError as error:
            raise MailTemporaryError(f"cannot write to maildir {self.path}: {error}") from None

    def messages(self) -> list[EmailMessage]:
        """Every message delivered so far, oldest first (for people and tests)."""
        import email
        import email.policy

        files = [
            path
            for folder in ("new", "cur")
            if (self.path / folder).is_dir()
            for path in (self.path / folder).iterdir()
        ]
        files.sort(key=lambda path: (path.stat().st_mtime_ns, path.name))
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in files
        ]
