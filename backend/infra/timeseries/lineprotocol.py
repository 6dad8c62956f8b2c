"""The InfluxDB adapter's batch serializer (line protocol).

What line protocol cannot carry in a tag is mapped away before a point gets here
(tags.representable_tag, part of the port's schema). Everything else (spaces, commas,
equals signs, quotes, inner backslashes) is escaped by influxdb-client's `Point`, which
we use as the serializer: the benchmark (bench/ingest.py) shows it is not the
bottleneck (about 10 us a point).
"""

from __future__ import annotations

from collections.abc import Iterable

from influxdb_client import Point as LinePoint
from influxdb_client import WritePrecision

from fieldline_backend.infra.timeseries import MEASUREMENT, Point


def to_line(point: Point, measurement: str = MEASUREMENT) -> str:
    line = LinePoint(measurement).tag("device_id", point.device_id)
    for key, value in point.tags.items():
        line.tag(key, value)
    for name, value in point.fields.items():
        line.field(name, value)
    return line.time(point.ts_ms * 1000 + point.tiebreak_us, WritePrecision.US).to_line_protocol()


def to_lines(points: Iterable[Point], measurement: str = MEASUREMENT) -> str:
    return "\n".join(to_line(point, measurement) for point in points)
