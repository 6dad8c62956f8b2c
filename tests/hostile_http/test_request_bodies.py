"""Issue 13 item 6: bodies over the limit get a 413 before they are read, and a 422
never echoes a large input back. Against a real `fieldline up`: five 100 MB bodies in
parallel (with and without Content-Length) keep the process under 300 MB."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.hostile_http.process import FieldlineUp, healthz_seconds

MiB = 1024 * 1024
HUNDRED_MB = 100 * 1000 * 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    up = FieldlineUp(tmp_path_factory.mktemp("bodies") / "data")
    yield up
    up.stop()


def hundred_mb_of_json(chunk: int = MiB):
    """A syntactically valid account whose name is 100 MB long, made as it is sent."""
    head = b'{"device_id": "d", "owner_id": "o", "metadata": {}, "name": "'
    yield head
    left = HUNDRED_MB - len(head) - 2
    while left > 0:
        yield b"a" * min(chunk, left)
        left -= chunk
    yield b'"}'


def post_hundred_mb(server: FieldlineUp, path: str, declared: bool) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json", "X-Fieldline-Internal": server.internal_token}
    if declared:
        headers["Content-Length"] = str(HUNDRED_MB)  # else httpx sends it chunked
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        answer = http.post(path, content=hundred_mb_of_json(), headers=headers)
    return answer.status_code, answer.content


def test_five_parallel_100_mb_bodies_get_413_and_memory_stays_bounded(server):
    jobs = [
        ("/internal/mqtt-accounts", True),
        ("/internal/mqtt-accounts", False),
        ("/api/v1/devices", True),
        ("/api/v1/devices", False),
        ("/internal/mqtt-accounts", False),
    ]
    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda job: post_hundred_mb(server, *job), jobs))
        # and the server answers others meanwhile
        status, seconds = healthz_seconds(server.base_url)
    got = [
        (path, declared, code) for (path, declared), (code, _) in zip(jobs, answers, strict=True)
    ]
    assert [code for *_, code in got] == [413] * len(jobs), f"expected five 413, got {got}"
    for _code, body in answers:
        assert len(body) < 1000, f"a 413 of {len(body)} bytes: {body[:200]!r}"
        assert str(MiB) in json.loads(body)["detail"], body
    peak_mb = server.status("VmHWM") / 1024
    assert peak_mb < 300, f"expected the process to stay under 300 MB, peak RSS {peak_mb:.0f} MB"
    assert (status, seconds < 1) == (200, True), f"/healthz during the bodies: {status} {seconds}"
    assert healthz_seconds(server.base_url)[0] == 200


def test_a_body_just_over_the_limit_is_refused_and_one_under_is_read(server):
    headers = {"X-Fieldline-Internal": server.internal_token}
    over = {"device_id": "d", "owner_id": "o", "name": "n", "metadata": {"x": "a" * MiB}}
    under = {"device_id": "d", "owner_id": "o", "name": "n", "metadata": {"x": "a" * 1000}}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        refused = http.post("/internal/mqtt-accounts", json=over)
        read = http.post("/internal/mqtt-accounts", json=under)
    assert refused.status_code == 413, f"expected 413 over 1 MiB, got {refused.status_code}"
    assert refused.headers["content-type"] == "application/json", refused.headers
    assert read.status_code != 413, f"a body under the limit was refused: {read.text[:300]}"


def test_a_route_that_needs_more_accepts_more(server):
    """The alerts batch routes declare max_body_size=8 MiB; others stay at 1 MiB."""
    batch = [{"_check_id": "nope", "_level": "ok", "pad": "a" * 1000}] * 1500  # about 1.5 MiB
    body = json.dumps(batch).encode()
    assert 2 * MiB > len(body) > MiB
    headers = {"X-Fieldline-Internal": server.internal_token, "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        batch_route = http.post("/internal/notifications/influxdb", content=body)
        other_route = http.post("/internal/mqtt-accounts", content=body)
    assert batch_route.status_code != 413, batch_route.text[:300]
    assert other_route.status_code == 413, f"expected 413, got {other_route.status_code}"


def test_a_422_never_echoes_a_large_input(server):
    """900 kB (under the limit) of invalid input: the 422 keeps its declared shape and is
    small; it used to carry the whole input back."""
    body = {"device_id": "d", "owner_id": "o", "name": "a" * 900_000, "metadata": [1] * 5000}
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        answer = http.post(
            "/internal/mqtt-accounts",
            json=body,
            headers={"X-Fieldline-Internal": server.internal_token},
        )
    assert answer.status_code == 422, answer.text[:300]
    assert len(answer.content) < 10_000, f"a 422 of {len(answer.content)} bytes echoes the input"
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert {"loc", "msg", "type"} <= set(error), error
        assert all(isinstance(part, str | int) for part in error["loc"]), error
    names = [error for error in detail if error["loc"] == ["body", "name"]]
    assert names and "cut" in names[0]["input"], f"the long name, cut: {names}"
