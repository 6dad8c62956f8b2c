"""Times as the alert formats and the preview write them: RFC 3339 strings (any offset,
up to nanosecond digits) or epoch nanoseconds (InfluxDB's numeric times), to epoch ms.
Shared by alerts (check payloads) and the gateway (preview start/stop)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any


class TimeInvalid(ValueError):
    pass


def parse_time_ms(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise TimeInvalid(f"{what}: a time is an RFC 3339 string or epoch nanoseconds")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise TimeInvalid(f"{what}: not a time")
        return int(value // 1_000_000)  # InfluxDB's numeric times are nanoseconds
    if isinstance(value, str):
        if not value.isascii():  # fromisoformat takes any character between date and time
            raise TimeInvalid(f"{what}: {value[:40]!r} is not an RFC 3339 time")
        text = value.strip().replace("Z", "+00:00")
        # Python before 3.11 takes at most 6 fractional digits; InfluxDB writes 9.
        if "." in text:
            head, tail = text.split(".", 1)
            digits = re.match(r"[0-9]*", tail).group(0)
            text = f"{head}.{digits[:6]}{tail[len(digits) :]}"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise TimeInvalid(f"{what}: {value!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise TimeInvalid(f"{what}: {value!r} has no time zone")
        return int(moment.timestamp() * 1000)
    raise TimeInvalid(f"{what}: missing or not a time")
