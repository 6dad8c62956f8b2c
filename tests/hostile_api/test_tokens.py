"""Issue 13, item 11: answers that carry a secret are never cached, an access token can
be revoked (and is refused at once), and `true` is not a number in a request body; on a
real `fieldline up`."""

from __future__ import annotations

import pytest

from tests.hostile_api.server import fieldline_up


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with fieldline_up(tmp_path_factory.mktemp("tokens") / "data") as running:
        yield running


@pytest.fixture
def user(server):
    return server.add_user()


def assert_no_store(answer, what: str) -> None:
    assert answer.status_code in (200, 201), f"{what}: got {answer.status_code} {answer.text}"
    got = answer.headers.get("cache-control")
    assert got == "no-store", f"{what}: expected Cache-Control: no-store, got {got!r}"
    assert answer.headers.get("pragma") == "no-cache", f"{what}: {dict(answer.headers)}"


def test_every_answer_with_a_secret_says_no_store(server, user):
    assert_no_store(server.login(*user), "POST /auth/token")
    with server.api(*user) as api:
        assert_no_store(api.post("/api/v1/tokens", json={"name": "ci"}), "POST /tokens")
        device = api.post("/api/v1/devices", json={"name": "probe"})
        assert_no_store(device, "POST /devices")
        rotated = api.post(f"/api/v1/devices/{device.json()['id']}/credentials/rotate")
        assert_no_store(rotated, "POST /devices/{id}/credentials/rotate")


@pytest.mark.parametrize("kind", ["access", "personal"])
def test_a_revoked_token_is_refused_at_once(server, user, kind):
    with server.api(*user) as api:
        if kind == "access":
            token = api.headers["Authorization"].removeprefix("Bearer ")
        else:
            token = api.post("/api/v1/tokens", json={"name": "script"}).json()["token"]
    with server.client(headers={"Authorization": f"Bearer {token}"}) as holder:
        assert holder.get("/api/v1/me").status_code == 200
        revoked = holder.delete("/api/v1/auth/token")
        assert revoked.status_code == 204, (
            f"DELETE /auth/token with a {kind} token: expected 204, got "
            f"{revoked.status_code} {revoked.text}"
        )
        after = holder.get("/api/v1/me")
        assert after.status_code == 401, (
            f"the revoked {kind} token: expected 401, got {after.status_code} {after.text}"
        )
        assert holder.delete("/api/v1/auth/token").status_code == 401
    with server.api(*user) as other:  # only that one token ended, not the user's others
        assert other.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/tokens", {"name": "t", "expires_in_days": True}),
        ("/api/v1/tokens", {"name": "t", "expires_in_days": "30"}),
        ("/api/v1/tokens", {"name": "t", "expires_in_days": 1.5}),
        ("/api/v1/users", {"username": "zed", "password": "long-enough-pw-1", "is_admin": 1}),
        ("/api/v1/users", {"username": "zed", "password": "long-enough-pw-1", "is_admin": "yes"}),
    ],
)
def test_true_is_not_a_number_nor_text_a_boolean_in_a_body(server, path, body):
    admin = server.add_user(admin=True)
    with server.api(*admin) as api:
        answer = api.post(path, json=body)
        assert answer.status_code == 422, (
            f"POST {path} {body}: expected 422, got {answer.status_code} {answer.text}"
        )
        field = next(key for key in body if key not in ("name", "username", "password"))
        assert field in answer.text, f"the 422 should name {field}: {answer.text}"
        assert api.get("/api/v1/tokens").json() == [], "no token may have been made"


def test_strict_types_keep_the_valid_numbers_and_booleans(server):
    admin = server.add_user(admin=True)
    with server.api(*admin) as api:
        made = api.post("/api/v1/tokens", json={"name": "t", "expires_in_days": 30})
        assert made.status_code == 201, made.text
        device = api.post("/api/v1/devices", json={"name": "probe", "metadata": {"floor": 1.5}})
        assert device.status_code == 201, device.text
        path = f"/api/v1/devices/{device.json()['id']}"
        assert api.patch(path, json={"enabled": "false"}).status_code == 422
        changed = api.patch(path, json={"enabled": False})
        assert (changed.status_code, changed.json()["enabled"]) == (200, False), changed.text
