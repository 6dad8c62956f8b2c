"""One path per reading (issue 18 item 5): the topic is parsed by one parser shared by
both ingestor paths and storage, storage takes the device from the client_id header the
ingestor set (design.md's AMQP message contract), not from the topic again, and a point
carries the reading's values and its bookkeeping marks apart."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import fieldline_backend
from fieldline_backend.common.topics import DeviceTopic, parse_topic
from fieldline_backend.infra.queue import QueueMessage
from fieldline_backend.infra.timeseries import Marks
from fieldline_backend.infra.timeseries.sqlite import SQLiteStore
from fieldline_backend.ingestor.stamps import ArrivalClock, message_headers
from fieldline_backend.storage.devices import DeviceInfo
from fieldline_backend.storage.service import StorageService

BACKEND = Path(fieldline_backend.__file__).parent


def test_one_topic_pattern_in_the_backend():
    """Every regex over 'devices/...' topics lives in common/topics.py."""
    found = []
    for path in sorted(BACKEND.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("compile", "match", "fullmatch", "search")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and "devices/" in str(node.args[0].value)
            ):
                found.append(str(path.relative_to(BACKEND)))
    assert found == ["common/topics.py"], f"topic patterns outside common/topics.py: {found}"


def test_the_parser_and_the_ingestor_headers_agree():
    cases = {
        "devices/dev-1/telemetry": DeviceTopic("dev-1", "telemetry"),
        "devices/dev-1/status/buffer": DeviceTopic("dev-1", "status/buffer"),
        "devices/a/b/telemetry": DeviceTopic("a", "b/telemetry"),
        "devices/dev-1/Telemetry": DeviceTopic("dev-1", "Telemetry"),
        "devices/dev-1/": None,
        "devices/a+b/telemetry": None,
        "other/dev-1/telemetry": None,
    }
    got = {topic: parse_topic(topic) for topic in cases}
    assert got == cases
    assert [t for t, p in got.items() if p is not None and p.stored] == [
        "devices/dev-1/telemetry",
        "devices/dev-1/status/buffer",
    ]
    clock = ArrivalClock()
    for topic, parsed in cases.items():
        headers = message_headers(topic, clock)
        assert (headers and headers["client_id"]) == (parsed and parsed.client_id), topic


class Directory:
    """The device directory's lookup (mqtt_auth is not the subject): one known device."""

    def lookup(self, client_id: str) -> DeviceInfo | None:
        return DeviceInfo(device_id=client_id, owner_id="o") if client_id == "dev-h" else None


def test_storage_takes_the_device_from_the_client_id_header(tmp_path):
    """The header says which device sent it; the topic only says what kind of message.
    (A topic naming another device cannot come from the ingestor; it shows here whether
    storage parses the device out of the topic a second time.)"""
    store = SQLiteStore(tmp_path / "series.db")
    store.ensure_schema()
    try:
        service = StorageService(Directory(), store, redelivery_window_ms=60_000)
        body = json.dumps({"ts": 1_800_000_000_000, "values": {"t": 1.5}}).encode()
        headers = {"client_id": "dev-h", "topic": "devices/other/telemetry", "received_at": 5}
        batch = service.prepare([QueueMessage(body, headers, tag=1)])
        assert batch.dead == []
        assert [(p.device_id, p.ts_ms) for p in batch.points] == [("dev-h", 1_800_000_000_000)]
        # The point carries the reading's values and its marks apart.
        [point] = batch.points
        assert (point.fields, point.marks) == ({"t": 1.5}, Marks(received=5))
        # ...and an unknown topic of a known device is shown in that device's status.
        odd = {"client_id": "dev-h", "topic": "devices/dev-h/Telemetry", "received_at": 7}
        batch = service.prepare([QueueMessage(body, odd, tag=2)])
        assert [reason for _, reason in batch.dead] == ["unknown topic: 'devices/dev-h/Telemetry'"]
        assert batch.rejected == [("dev-h", 7)]
    finally:
        store.close()
