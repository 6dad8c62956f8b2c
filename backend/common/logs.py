"""Logging set up once per process: plain text, or one JSON object per line.

Two guards, because a flood of bad clients once wrote 950k lines (424 MB) in 80 s:
- `RepeatFilter`: a warning or error repeated within an interval is written once; the
  next one after the interval carries the count ("(repeated 1234 times in 10 s)");
- the log file rotates at a size (RotatingFileHandler), keeping a few old files.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
import threading
import time
from pathlib import Path

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Fields passed with extra={...} become top-level keys.
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RepeatFilter(logging.Filter):
    """Lets the first of a repeated warning/error through, then one per interval.

    "The same" is the same logger, level and message template (its first line, before
    arguments are merged: "%s refused" from two addresses is one message). Records below
    WARNING always pass: those are the normal story of the process. A count of
    suppressed records is reported on the first record let through after the interval;
    if none comes, the count is not written.
    """

    def __init__(self, interval: float = 10.0, clock=time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self.seen: dict[tuple, list] = {}  # key -> [window start, suppressed count]
        self.lock = threading.Lock()  # records come from the event loop and from threads

    def filter(self, record: logging.LogRecord) -> bool:
        # One instance serves every handler: decide once per record, then repeat that.
        decided = getattr(record, "_repeat_decided", None)
        if decided is not None:
            return decided
        with self.lock:
            record._repeat_decided = self._decide(record)
        return record._repeat_decided

    def _decide(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.interval <= 0:
            return True
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200])
        now = self.clock()
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < self.interval:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            took = now - entry[0]
            record.msg = f"{record.msg} (repeated {entry[1]} times in {took:.0f} s)"
        if len(self.seen) > 1000:  # many distinct messages: forget the old windows
            self.seen.clear()
        self.seen[key] = [now, 0]
        return True


def setup_logging(
    fmt: str = "text",
    level: str = "INFO",
    log_file: Path | None = None,
    console: bool = True,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
    repeat_interval: float = 10.0,
) -> None:
    """Log to stderr (unless console=False) and, when given, append to log_file too
    (rotated at max_bytes, keeping `backups` old files)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)] if console else []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        )
    repeats = RepeatFilter(repeat_interval)
    for handler in handlers:
        handler.addFilter(repeats)
        if fmt == "json":
            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    for noisy in ("pika", "amqtt", "transitions", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
