"""The durable local queue: one SQLite file in the data dir, the embedded stand-in for
RabbitMQ with the same contract.

A message is a row; a consumer claims rows for a lease and deletes them on ack. A claim
whose lease ran out (the consumer died) is handed out again, like RabbitMQ redelivers
a dead consumer's unacked messages. Several processes may share the file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fieldline_backend.infra.queue import (
    DEAD_QUEUE,
    REASON_HEADER,
    STORAGE_QUEUE,
    DeadLetter,
    QueueMessage,
    QueueUnavailable,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, headers TEXT NOT NULL,
    claimed_by TEXT, claimed_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL, headers TEXT NOT NULL,
    dead_at REAL NOT NULL);
"""


class LocalQueue:
    """Publisher, consumer and dead-letter box on the same file."""

    def __init__(self, path: Path | str, lease_seconds: float = 30.0, busy_timeout: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease = lease_seconds
        self.consumer_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=busy_timeout)
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed message survives a power cut, not only a crash.
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        self.held: set[int] = set()

    # ---- publisher ---------------------------------------------------------------------

    def publish(
        self, body: bytes, headers: dict[str, Any], on_confirmed: Callable[[], None]
    ) -> None:
        self.put_many([(body, headers)])
        on_confirmed()

    def put_many(self, messages: Sequence[tuple[bytes, dict[str, Any]]]) -> None:
        """Store messages durably; returns after the commit."""
        rows = [(bytes(body), json.dumps(headers)) for body, headers in messages]
        try:
            with self.lock, self.db:
                self.db.executemany("INSERT INTO messages (body, headers) VALUES (?, ?)", rows)
        except sqlite3.Error as error:
            raise QueueUnavailable(f"local queue {self.path}: {error}") from error

    # ---- consumer ----------------------------------------------------------------------

    def receive(self, max_messages: int, max_wait: float) -> list[QueueMessage]:
        deadline = time.monotonic() + max_wait
        while True:
            claimed = self._claim(max_messages)
            if claimed or time.monotonic() >= deadline:
                return claimed
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))

    def _claim(self, limit: int) -> list[QueueMessage]:
        now = time.time()
        self._release_dead_claims(now)
        with self.lock, self.db:
            rows = self.db.execute(
                "SELECT id, body, headers FROM messages WHERE claimed_until < ? "
                "ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
            if not rows:
                return []
            ids = [row[0] for row in rows]
            self.db.execute(
                f"UPDATE messages SET claimed_by = ?, claimed_until = ? "
                f"WHERE id IN ({','.join('?' * len(ids))})",
                (self.consumer_id, now + self.lease, *ids),
            )
        self.held.update(ids)
        return [QueueMessage(bytes(body), json.loads(headers), id_) for id_, body, headers in rows]

    def _release_dead_claims(self, now: float) -> None:
        """Claims of a consumer process that is gone come back at once, not at lease end
        (the queue file is local: its consumers run on this machine)."""
        if now < getattr(self, "_next_reap", 0):
            return
        self._next_reap = now + 1.0
        with self.lock:
            owners = self.db.execute(
                "SELECT DISTINCT claimed_by FROM messages WHERE claimed_until >= ?", (now,)
            ).fetchall()
        for (owner,) in owners:
            pid = int(str(owner).split("-", 1)[0]) if owner else 0
            if pid and pid != os.getpid() and not _alive(pid):
                with self.lock, self.db:
                    self.db.execute(
                        "UPDATE messages SET claimed_until = 0 WHERE claimed_by = ?", (owner,)
                    )

    def ack(self, messages: Sequence[QueueMessage]) -> None:
        ids = [m.tag for m in messages]
        if not ids:
            return
        with self.lock, self.db:
            self.db.execute(f"DELETE FROM messages WHERE id IN ({','.join('?' * len(ids))})", ids)
        self.held.difference_update(ids)

    def dead_letter(self, message: QueueMessage, reason: str) -> None:
        headers = {**message.headers, REASON_HEADER: reason}
        with self.lock, self.db:
            self.db.execute(
                "INSERT INTO dead_letters (body, headers, dead_at) VALUES (?, ?, ?)",
                (message.body, json.dumps(headers), time.time()),
            )
            self.db.execute("DELETE FROM messages WHERE id = ?", (message.tag,))
        self.held.discard(message.tag)

    def pause(self, seconds: float) -> None:
        """Hold the claimed messages: renew their lease, then wait."""
        if self.held:
            ids = list(self.held)
            with self.lock, self.db:
                self.db.execute(
                    f"UPDATE messages SET claimed_until = ? "
                    f"WHERE claimed_by = ? AND id IN ({','.join('?' * len(ids))})",
                    (time.time() + self.lease + seconds, self.consumer_id, *ids),
                )
        time.sleep(seconds)

    def depth(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def dead_depth(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]

    # ---- dead letters ------------------------------------------------------------------

    def list(self, limit: int = 100) -> list[DeadLetter]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, body, headers FROM dead_letters ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [DeadLetter(str(id_), bytes(body), json.loads(h)) for id_, body, h in rows]

    def replay(self, limit: int | None = None) -> int:
        with self.lock, self.db:
            rows = self.db.execute(
                "SELECT id, body, headers FROM dead_letters ORDER BY id LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            for id_, body, headers in rows:
                clean = {k: v for k, v in json.loads(headers).items() if k != REASON_HEADER}
                self.db.execute(
                    "INSERT INTO messages (body, headers) VALUES (?, ?)", (body, json.dumps(clean))
                )
                self.db.execute("DELETE FROM dead_letters WHERE id = ?", (id_,))
        return len(rows)

    def close(self) -> None:
        with self.lock:
            self.db.close()


class LocalQueueAdmin:
    """The QueueAdmin port on the local queue file; never creates the file."""

    def __init__(self, path: Path | str, timeout: float = 2.0):
        self.path = Path(path)
        self.timeout = timeout

    def depths(self) -> dict[str, int]:
        if not self.path.exists():
            return {}  # nothing published yet
        queue = LocalQueue(self.path, busy_timeout=self.timeout)
        try:
            return {STORAGE_QUEUE: queue.depth(), DEAD_QUEUE: queue.dead_depth()}
        finally:
            queue.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
