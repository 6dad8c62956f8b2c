"""Issue 3, "Done when" 1: N readings from M devices at QoS 1 -> exactly N points with the
right tags, values and timestamps; batches too; no ts -> arrival time. Both stacks."""

from __future__ import annotations

import time

from tests.pipeline.support import reading


def test_readings_from_several_devices_land_exactly_once_with_tags(start_pipeline):
    with start_pipeline() as pipeline:
        devices = [
            pipeline.account("owner-7", f"probe {i}", {"room": f"lab, floor {i}", "rack": i})
            for i in range(3)
        ]
        base = 1_764_000_000_000
        per_device = 40
        for device in devices:
            singles = [
                reading(s, ts=base + s, temperature=float(s), door=s % 2 == 0)
                for s in range(per_device - 10)
            ]
            batch = [
                reading(s, ts=base + s, temperature=float(s), door=s % 2 == 0)
                for s in range(per_device - 10, per_device)
            ]
            device.publish_all(singles + [batch])
        before = int(time.time() * 1000)
        devices[0].publish_all([{"seq": 999, "boot": 1, "values": {"temperature": -4.5}}])
        expected = {d.device_id: per_device for d in devices}
        expected[devices[0].device_id] += 1
        pipeline.wait_stored(expected)
        after = int(time.time() * 1000)

        store = pipeline.store()
        for device in devices:
            series = store.query([device.device_id], ["temperature", "door"], base, base + 10_000)
            got = series[device.device_id]
            assert got["temperature"] == [(base + s, float(s)) for s in range(per_device)]
            assert got["door"] == [(base + s, s % 2 == 0) for s in range(per_device)]
        late = store.query([devices[0].device_id], ["temperature"], before - 1, after + 1)
        [(stamp, value)] = late[devices[0].device_id]["temperature"]
        assert value == -4.5 and before <= stamp <= after, "no ts: the arrival time"
        store.close()
        for index, device in enumerate(devices):
            assert pipeline.tags_of(device.device_id) == [
                {
                    "device_id": device.device_id,
                    "owner": "owner-7",
                    "name": f"probe {index}",
                    "room": f"lab, floor {index}",
                    "rack": str(index),
                }
            ]
        for device in devices:
            device.close()
