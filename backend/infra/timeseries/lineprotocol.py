"""What of a tag survives InfluxDB 1.x line protocol, and the batch serializer.

Line protocol cannot carry a line break or a tab in a tag (influxdb-client writes them
as the two characters `\\n`, which InfluxDB stores literally) nor a tag that ends in a
backslash (influxdb-client appends a space, which InfluxDB then reads as an escaped
space: `end\\` is stored as `end `). `representable_tag` maps such text to what is
stored on every adapter, so the InfluxDB and the SQLite stores hold the same tags.
Everything else (spaces, commas, equals signs, quotes, inner backslashes) is escaped by
influxdb-client's `Point`, which we use as the serializer: the benchmark
(bench/ingest.py) shows it is not the bottleneck (about 10 us a point).
"""

from __future__ import annotations

from collections.abc import Iterable

from influxdb_client import Point as LinePoint
from influxdb_client import WritePrecision

from fieldline_backend.infra.timeseries import MEASUREMENT, Point

_UNREPRESENTABLE = str.maketrans({"\n": " ", "\r": " ", "\t": " "})

# InfluxDB refuses these as tag keys, or they would shadow the schema's own tags.
RESERVED_TAG_KEYS = {"time", "device_id", "owner", "_field", "_measurement"}


def representable_tag(text: str) -> str:
    """The tag text as line protocol can carry it ('' = the tag is left out)."""
    return text.translate(_UNREPRESENTABLE).rstrip("\\")


def to_line(point: Point, measurement: str = MEASUREMENT) -> str:
    line = LinePoint(measurement).tag("device_id", point.device_id)
    for key, value in point.tags.items():
        line.tag(key, value)
    for name, value in point.fields.items():
        line.field(name, value)
    return line.time(point.ts_ms, WritePrecision.MS).to_line_protocol()


def to_lines(points: Iterable[Point], measurement: str = MEASUREMENT) -> str:
    return "\n".join(to_line(point, measurement) for point in points)
