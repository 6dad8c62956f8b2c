"""The mail port against a real SMTP server (aiosmtpd): plain, STARTTLS with login,
implicit TLS; a refused address is permanent, a server down temporary; the maildir."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from fieldline_backend.infra.mail import (
    MailPermanentError,
    MailTemporaryError,
    open_mailer,
)
from fieldline_backend.infra.mail.maildir import MaildirMailer
from fieldline_backend.infra.mail.smtp import SmtpConfig, SmtpMailer
from tests.alerts.smtp_server import SmtpServer
from tests.support.servers import free_port


def message(to: str = "ops@example.com") -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "[CRIT] hello", "fieldline@localhost", to
    mail.set_content("body")
    return mail


def test_smtp_url_forms():
    plain = SmtpConfig.from_url("smtp://relay.example.com")
    assert (plain.port, plain.starttls, plain.implicit_tls, plain.username) == (
        25,
        False,
        False,
        None,
    )
    tls = SmtpConfig.from_url("smtp://u%40x:p%3Ass@mail.example.com:587?starttls=1")
    assert (tls.username, tls.password, tls.port, tls.starttls) == ("u@x", "p:ss", 587, True)
    implicit = SmtpConfig.from_url("smtps://u:p@mail.example.com")
    assert (implicit.port, implicit.implicit_tls) == (465, True)
    assert "p:ss" not in SmtpMailer(tls).describe()
    with pytest.raises(ValueError, match="smtp://"):
        SmtpConfig.from_url("http://mail.example.com")


@pytest.mark.parametrize("tls", [None, "starttls", "implicit"])
def test_delivers_over_each_transport(tmp_path, tls):
    server = SmtpServer(tmp_path, tls=tls, login=("alerts", "s3cret") if tls else None).start()
    try:
        scheme = "smtps" if tls == "implicit" else "smtp"
        login = "alerts:s3cret@" if tls else ""
        query = "?verify=0" + ("&starttls=1" if tls == "starttls" else "")
        mailer = SmtpMailer.from_url(f"{scheme}://{login}localhost:{server.port}{query}")
        asyncio.run(mailer.send(message()))
        [got] = server.wait_count(1)
        assert got.recipients == ["ops@example.com"] and got.message["Subject"] == "[CRIT] hello"
    finally:
        server.stop()


def test_wrong_login_is_temporary_so_mail_waits_for_the_fix(tmp_path):
    server = SmtpServer(tmp_path, tls="starttls", login=("alerts", "s3cret")).start()
    try:
        mailer = SmtpMailer.from_url(
            f"smtp://alerts:wrong@localhost:{server.port}?starttls=1&verify=0"
        )
        with pytest.raises(MailTemporaryError, match="login"):
            asyncio.run(mailer.send(message()))
    finally:
        server.stop()


def test_refused_address_is_permanent_and_server_down_temporary(tmp_path):
    server = SmtpServer(tmp_path, refuse={"nobody@example.com"}).start()
    try:
        mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{server.port}")
        with pytest.raises(MailPermanentError, match="nobody@example.com"):
            asyncio.run(mailer.send(message("nobody@example.com")))
    finally:
        server.stop()
    down = SmtpMailer.from_url(f"smtp://127.0.0.1:{free_port()}?timeout=5")
    with pytest.raises(MailTemporaryError, match="unreachable"):
        asyncio.run(down.send(message()))


def test_maildir_is_the_embedded_default(tmp_path):
    from fieldline_backend.common.settings import Settings

    mailer = open_mailer(Settings(data_dir=tmp_path))
    assert isinstance(mailer, MaildirMailer) and mailer.path == tmp_path / "mail"
    asyncio.run(mailer.send(message()))
    assert {p.name for p in (tmp_path / "mail").iterdir()} >= {"new", "cur", "tmp"}
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 1
    assert mailer.messages()[0]["Subject"] == "[CRIT] hello"
