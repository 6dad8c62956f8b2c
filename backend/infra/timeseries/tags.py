"""What of a tag every adapter can store: part of the port's schema, not of one adapter.

Line protocol cannot carry a line break or a tab in a tag (influxdb-client writes them
as the two characters `\\n`, which InfluxDB stores literally) nor a tag that ends in a
backslash (influxdb-client appends a space, which InfluxDB then reads as an escaped
space: `end\\` is stored as `end `). `representable_tag` maps such text to what is
stored on every adapter, so the InfluxDB and the SQLite stores hold the same tags.
"""

from __future__ import annotations

_UNREPRESENTABLE = str.maketrans({"\n": " ", "\r": " ", "\t": " "})

# InfluxDB refuses these as tag keys, or they would shadow the schema's own tags.
RESERVED_TAG_KEYS = {"time", "device_id", "owner", "_field", "_measurement"}


def representable_tag(text: str) -> str:
    """The tag text as every adapter can carry it ('' = the tag is left out)."""
    return text.translate(_UNREPRESENTABLE).rstrip("\\")
