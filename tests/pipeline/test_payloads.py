"""Issue 3, "Done when" 4 and 5 on both stacks: hypothesis-made payloads, valid and not;
odd device names and metadata reaching line-protocol escaping; a device publishing into
another device's topic."""

from __future__ import annotations

import itertools
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fieldline_backend.infra.queue import open_dead_letters
from fieldline_backend.infra.timeseries.tags import representable_tag
from tests.pipeline.support import reading
from tests.support.servers import wait_for

NAME_TAIL = st.from_regex(r"[A-Za-z0-9_]{0,20}", fullmatch=True)
NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(10**300), max_value=10**300),
)


@st.composite
def valid_reading_values(draw) -> dict:
    """Numbers under n..., booleans under b...: a field keeps one type (InfluxDB)."""
    numbers = draw(st.dictionaries(NAME_TAIL.map(lambda t: "n" + t), NUMBER, max_size=40))
    flags = draw(st.dictionaries(NAME_TAIL.map(lambda t: "b" + t), st.booleans(), max_size=20))
    values = {**numbers, **flags}
    return values or {"n": 1.5}


WEIRD_NAME = st.text(alphabet=" ,=\"\\'=a1", min_size=1, max_size=8).filter(
    lambda n: not n.isidentifier()
)

INVALID = st.one_of(
    st.just(b'{"values": {"x": NaN}}'),
    st.just(b'{"values": {"x": Infinity}}'),
    st.just(b'{"values": {"x": -Infinity}}'),
    st.just(b'{"values": {"x": 1e400}}'),
    st.integers(min_value=400, max_value=2000).map(
        lambda n: b'{"values": {"x": 1' + b"0" * n + b"}}"
    ),
    st.integers(min_value=2000, max_value=30000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=100, max_value=3000).map(
        lambda n: b'{"values": {"x": ' + b"[" * n + b"1" + b"]" * n + b"}}"
    ),
    st.binary(min_size=1, max_size=50).map(
        lambda b: b'{"values": {"x": 1}, "n": "\xff' + b + b'"}'
    ),
    WEIRD_NAME.map(lambda n: json.dumps({"values": {n: 1.0}}).encode()),
    st.sampled_from(["21.5", None, [1], {"a": 1}, "true"]).map(
        lambda v: json.dumps({"values": {"t": v}}).encode()
    ),
    st.sampled_from(["1", -1, 1.5, True, 2**70]).map(
        lambda ts: json.dumps({"ts": ts, "values": {"t": 1}}).encode()
    ),
    st.just(json.dumps({"values": {f"v{i}": i for i in range(65)}}).encode()),
    st.just(json.dumps({"values": {"t": 1}, "pad": "x" * 66_000}).encode()),
    st.sampled_from([b"[]", b"{}", b"42", b'"text"', b"null", b'{"values": {}}', b""]),
)


def _expected(value):
    return value if isinstance(value, bool) else float(value)


def test_hypothesis_payloads_valid_stored_invalid_dead_lettered(start_pipeline):
    with start_pipeline() as pipeline:
        device = pipeline.account("owner-h", "fuzz")
        store = pipeline.store()
        dead_box = open_dead_letters(pipeline.settings)
        counter = itertools.count(1)
        base = 1_764_000_000_000
        dead_seen = 0

        @settings(deadline=None)
        @given(
            valid=st.lists(valid_reading_values(), min_size=0, max_size=3),
            as_batch=st.booleans(),
            invalid=st.lists(INVALID, max_size=2),
        )
        def check(valid, as_batch, invalid):
            nonlocal dead_seen
            readings = []
            for values in valid:
                seq = next(counter)
                readings.append((base + seq, reading(seq, ts=base + seq, **values)))
            payloads = (
                [[r for _, r in readings]] if as_batch and readings else [r for _, r in readings]
            )
            device.publish_all([json.dumps(p).encode() for p in payloads] + invalid)
            for ts, body in readings:
                names = list(body["values"])

                def stored(ts=ts, names=names):
                    got = store.query([device.device_id], names, ts, ts + 1)[device.device_id]
                    return got if len(got) == len(names) else None

                got = wait_for(stored, 30, f"reading at {ts} in the store")
                for name, value in body["values"].items():
                    assert got[name] == [(ts, _expected(value))], name
            if invalid:
                dead_seen += len(invalid)
                wait_for(
                    lambda: pipeline.storage_stats()["dead_letters"] >= dead_seen,
                    30,
                    f"{dead_seen} dead letters",
                )

        check()
        # Every invalid payload is in the dead-letter queue with a reason.
        letters = dead_box.list(limit=10_000)
        assert len(letters) == dead_seen
        assert all(letter.reason.startswith("invalid payload: ") for letter in letters)
        assert pipeline.storage_stats()["dead_letters"] == dead_seen
        assert all(w for w in pipeline.running.ctx.extras["storage"].workers)
        assert pipeline.running.ctx.extras["storage"].workers[0].thread.is_alive()
        store.close()
        dead_box.close()
        device.close()


TAG_TEXT = st.text(
    alphabet=st.sampled_from(list(" ,=\"\\'=\tabc\n\u00e9\u4e2d")), min_size=1, max_size=12
)


def test_device_names_and_metadata_with_line_protocol_characters(start_pipeline):
    with start_pipeline() as pipeline:
        ts = itertools.count(1_764_000_000_000)

        @settings(deadline=None, max_examples=12)
        @given(name=TAG_TEXT.filter(lambda t: t.strip() and t.isprintable()), value=TAG_TEXT)
        def check(name, value):
            device = pipeline.account('owner, "x"=y\\', name, {"room": value})
            at = next(ts)
            device.publish_all([reading(1, ts=at, t=1.0)])
            pipeline.wait_stored({device.device_id: 1}, timeout=30)
            expected = {"device_id": device.device_id, "owner": 'owner, "x"=y'}
            if representable_tag(name):
                expected["name"] = representable_tag(name)
            if representable_tag(value):
                expected["room"] = representable_tag(value)
            assert pipeline.tags_of(device.device_id) == [expected]
            device.close()

        check()


def test_a_device_cannot_write_into_another_devices_series(start_pipeline):
    with start_pipeline() as pipeline:
        victim = pipeline.account("owner-a", "victim")
        intruder = pipeline.account("owner-b", "intruder")
        base = 1_764_000_000_000
        victim.publish_all([reading(s, ts=base + s, t=1.0) for s in range(5)])
        pipeline.wait_stored({victim.device_id: 5})
        # Into the victim's topic: same ts (would overwrite) and new ts (would add).
        # Mosquitto drops them and closes the connection; amqtt drops them.
        for s in range(10):
            intruder.publish(
                json.dumps(reading(s, ts=base + s, t=666.0)).encode(), topic=victim.topic
            )
        time.sleep(1)
        intruder.close()
        # Then a reading of its own, which does arrive: everything before it was handled.
        intruder = pipeline.reconnect(intruder)
        intruder.publish_all([reading(1, ts=base, t=2.0)])
        pipeline.wait_stored({intruder.device_id: 1})
        time.sleep(0.5)
        store = pipeline.store()
        got = store.query([victim.device_id], ["t"], base, base + 100)[victim.device_id]
        assert got == {"t": [(base + s, 1.0) for s in range(5)]}
        store.close()
        victim.close()
        intruder.close()
