"""One contract, both mail adapters: the maildir (embedded default) and SMTP against the
shared aiosmtpd sink (.services, port 18025). Each test runs on both and reads back what
the mail system received, so "delivered" means the same thing everywhere. Transport
details of SMTP alone (TLS, login, refused addresses) stay in test_mail_port.py."""

from __future__ import annotations

import asyncio
import mailbox
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from fieldline_backend.infra.mail import Mailer, MailTemporaryError
from fieldline_backend.infra.mail.maildir import MaildirMailer
from fieldline_backend.infra.mail.smtp import SmtpMailer
from tests.support.servers import free_port


@dataclass
class Port:
    mailer: Mailer
    received: Callable[[str], list[EmailMessage]]  # messages whose subject holds a token
    unreachable: Mailer  # the same adapter pointed at a mail system that is not there
    where: str  # what describe() must name


def _read_maildir(path: Path, token: str) -> list[EmailMessage]:
    box = mailbox.Maildir(path, create=False)
    found = []
    for key in list(box.iterkeys()):
        try:
            raw = box.get_bytes(key)
        except (FileNotFoundError, KeyError):  # moved by another reader meanwhile
            continue
        message = mailbox.Message(raw)
        if token in str(message.get("Subject", "")) or token in raw.decode("latin-1"):
            found.append(_parse(raw))
    return found


def _parse(raw: bytes) -> EmailMessage:
    import email

    return email.message_from_bytes(raw, policy=default_policy)


@pytest.fixture(params=["maildir", "smtp"])
def port(request, tmp_path) -> Port:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the maildir should be")
    if request.param == "maildir":
        return Port(
            MaildirMailer(tmp_path / "mail"),
            lambda token: _read_maildir(tmp_path / "mail", token),
            MaildirMailer(blocked / "mail"),
            str(tmp_path / "mail"),
        )
    sink_port, sink_maildir = request.getfixturevalue("smtp_sink")
    # aiosmtpd's Mailbox handler creates its maildir only when the folder is missing;
    # a folder made empty (scripts/services.sh before the fix) makes every DATA a 500.
    for folder in ("tmp", "new", "cur"):
        (Path(sink_maildir) / folder).mkdir(parents=True, exist_ok=True)
    return Port(
        SmtpMailer.from_url(f"smtp://127.0.0.1:{sink_port}?timeout=5"),
        lambda token: _read_maildir(Path(sink_maildir), token),
        SmtpMailer.from_url(f"smtp://127.0.0.1:{free_port()}?timeout=2"),
        f"127.0.0.1:{sink_port}",
    )


def message(token: str, to: str = "ops@example.com", body: str = "body") -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = f"[CRIT] {token} Kühlraum 3 über 8 °C"
    mail["From"], mail["To"] = "fieldline@localhost", to
    mail.set_content(body)
    return mail


def wait_for(port: Port, token: str, count: int, timeout: float = 5.0) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        got = port.received(token)
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_message_arrives_whole(port):
    token = secrets.token_hex(6)
    body = f"temperature 9.5 °C ({token})\nsecond line\n"
    asyncio.run(port.mailer.send(message(token, body=body)))
    [got] = wait_for(port, token, 1)
    assert (str(got["Subject"]), str(got["From"]), str(got["To"])) == (
        f"[CRIT] {token} Kühlraum 3 über 8 °C",
        "fieldline@localhost",
        "ops@example.com",
    )
    assert got.get_content() == body


def test_several_recipients_get_one_message(port):
    token = secrets.token_hex(6)
    asyncio.run(port.mailer.send(message(token, to="a@example.com, b@example.com")))
    got = wait_for(port, token, 1)
    time.sleep(0.2)  # a second copy would show up by now
    got = port.received(token)
    assert [str(m["To"]) for m in got] == ["a@example.com, b@example.com"]


def test_concurrent_sends_each_arrive_once(port):
    tokens = [secrets.token_hex(6) for _ in range(20)]

    async def send_all():
        await asyncio.gather(*(port.mailer.send(message(t)) for t in tokens))

    asyncio.run(send_all())
    counts = {t: len(wait_for(port, t, 1)) for t in tokens}
    assert counts == {t: 1 for t in tokens}


def test_a_mail_system_that_is_not_there_is_temporary(port):
    started = time.monotonic()
    with pytest.raises(MailTemporaryError):
        asyncio.run(port.unreachable.send(message(secrets.token_hex(6))))
    assert time.monotonic() - started < 5, "the failure must come within the timeout"


def test_describe_names_where_mail_goes(port):
    assert port.where in port.mailer.describe()
