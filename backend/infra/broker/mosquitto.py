"""Mosquitto kept in step through its password and ACL files, regenerated from the
database and reloaded with SIGHUP (why not the dynamic-security plugin: docs/broker.md).

On SIGHUP Mosquitto rereads both files, disconnects clients whose user was removed or
whose password no longer matches, admits new users and applies ACL changes to open
connections. `apply()` returns once Mosquitto admits a throwaway "reload check" user
whose fresh password went into this very file version: the reload has happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from fieldline_backend.infra.broker import RELOAD_CHECK_USERNAME, BrokerAccount
from fieldline_backend.infra.broker.passwords import hash_password
from fieldline_backend.infra.broker.probe import connack_code

log = logging.getLogger(__name__)

RELOAD_CHECK_USER = RELOAD_CHECK_USERNAME  # no ACL lines: may not touch any topic
HEADER = "# Written by Fieldline's mqtt_auth from its database; edits here are overwritten.\n"


def password_file_text(accounts: Sequence[BrokerAccount]) -> str:
    lines = [f"{account.username}:{account.password_hash}\n" for account in accounts]
    return HEADER + "".join(lines)


def acl_file_text(accounts: Sequence[BrokerAccount]) -> str:
    """`topic read` grants subscribe and receive, `topic write` publish (Mosquitto 2)."""
    out = [HEADER]
    for account in accounts:
        out.append(f"\nuser {account.username}\n")
        out += [f"topic write {topic}\n" for topic in account.publish]
        out += [f"topic read {topic}\n" for topic in account.subscribe]
    return "".join(out)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` in one step (temp file + rename), keeping its owner and mode.

    Mosquitto started as root drops to the `mosquitto` user and rereads the files as
    that user, so a replacement must stay readable by whoever could read the old one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = path.stat()
        mode, owner = old.st_mode & 0o777, (old.st_uid, old.st_gid)
    except FileNotFoundError:
        mode, owner = 0o640, None
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # No fsync: the files are derived from the database and rewritten whenever
        # mqtt_auth starts, so a power cut costs nothing that reconciliation won't redo.
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        if os.geteuid() == 0:
            if owner is None:
                with contextlib.suppress(KeyError):
                    owner = (0, grp.getgrnam("mosquitto").gr_gid)
            if owner is not None:
                os.chown(temp, *owner)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


class MosquittoFiles:
    """The broker port on a real Mosquitto: password_file + acl_file + SIGHUP."""

    def __init__(
        self,
        password_file: Path,
        acl_file: Path,
        pid_file: Path | None,
        address: tuple[str, int],
        confirm_timeout: float = 5.0,
        tls: bool = False,
    ):
        self.password_file = password_file
        self.acl_file = acl_file
        self.pid_file = pid_file
        self.address = address
        self.confirm_timeout = confirm_timeout
        self.tls = tls
        self._applied = False

    async def apply(self, accounts: Sequence[BrokerAccount]) -> None:
        if self._applied and await asyncio.to_thread(self._files_match, accounts):
            return  # a periodic resync with nothing to change: no reload
        check_password = secrets.token_urlsafe(16)
        check_line = f"{RELOAD_CHECK_USER}:{hash_password(check_password, 1)}\n"
        await asyncio.to_thread(self._write, accounts, check_line)
        self._applied = True
        pid = self._broker_pid()
        if pid is None:
            log.info("Mosquitto is not running; it reads the regenerated files when it starts")
            return
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            log.warning(
                "Mosquitto pid %s from %s is not running; files written", pid, self.pid_file
            )
            return
        await self._confirm_reload(check_password)

    def _write(self, accounts: Sequence[BrokerAccount], check_line: str) -> None:
        # ACL first: a user who appears in the password file is never without rules.
        # The reload-check user gets no ACL lines, so it may not touch any topic.
        write_atomically(self.acl_file, acl_file_text(accounts))
        write_atomically(self.password_file, password_file_text(accounts) + check_line)

    def _files_match(self, accounts: Sequence[BrokerAccount]) -> bool:
        """Do the files on disk already say what `accounts` says (hand edits or another
        writer would make them differ)?"""
        try:
            passwords = self.password_file.read_text()
            rules = self.acl_file.read_text()
        except OSError:
            return False
        kept = [
            line
            for line in passwords.splitlines(keepends=True)
            if not line.startswith(f"{RELOAD_CHECK_USER}:")
        ]
        return rules == acl_file_text(accounts) and "".join(kept) == password_file_text(accounts)

    def _broker_pid(self) -> int | None:
        if self.pid_file is None:
            return None
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    async def _confirm_reload(self, check_password: str) -> None:
        host, port = self.address
        deadline = time.monotonic() + self.confirm_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            client_id = f"{RELOAD_CHECK_USER}-{secrets.token_hex(4)}"
            try:
                code = await connack_code(
                    host, port, client_id, RELOAD_CHECK_USER, check_password, tls=self.tls
                )
            except (OSError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if code == 0:
                    return
                last = f"CONNACK code {code}"
            await asyncio.sleep(0.01)
        log.warning(
            "Mosquitto at %s:%s did not confirm the reload within %.0f s (%s); it will "
            "apply the files on its next reload or start",
            host,
            port,
            self.confirm_timeout,
            last,
        )

    async def reachable(self) -> bool:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(*self.address), 2.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True

    async def close(self) -> None:
        return None


class UnmanagedBroker:
    """FIELDLINE_MQTT_URL without Mosquitto files: accounts live in the database only."""

    async def apply(self, accounts: Sequence[BrokerAccount]) -> None:
        return None

    async def reachable(self) -> bool:
        return True  # not ours to watch

    async def close(self) -> None:
        return None
