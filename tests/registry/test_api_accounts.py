"""Issue 2, gateway: sign-in, access-token expiry, admin-only user creation, personal API
tokens, failed-login rate limits and `fieldline users create`, each on both stacks
(PostgreSQL and SQLite)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from fieldline_backend.common.db import Database
from fieldline_backend.common.settings import Settings
from fieldline_backend.gateway.auth import accounts_for
from fieldline_backend.gateway.clock import utcnow
from fieldline_backend.gateway.login_limits import ADDRESS_LIMIT, USER_LIMIT
from fieldline_backend.gateway.models import TokenRecord
from fieldline_backend.gateway.tokens import TokenStore
from fieldline_backend.gateway.users import UserStore, create_user_in
from tests.support.servers import free_port
from tests.support.stack import RunningStack, running_stack

PASSWORD = "correct horse battery"


def gateway_settings(kind: str, tmp_path, request, **extra) -> Settings:
    values = {
        "data_dir": tmp_path / "data",
        "http_port": 0,
        "mqtt_port": free_port(),  # never the machine's 1883, should a broker start
        "internal_token": secrets.token_urlsafe(32),
        **extra,
    }
    if kind == "real":
        values["database_url"] = request.getfixturevalue("pg_url")
    values["data_dir"].mkdir(parents=True, exist_ok=True)
    return Settings(**values)


@pytest.fixture(params=["real", "embedded"])
def gateway(request, tmp_path) -> Iterator[RunningStack]:
    """The gateway alone, on PostgreSQL ("real") or SQLite ("embedded")."""
    settings = gateway_settings(request.param, tmp_path, request, access_token_minutes=7)
    with running_stack(settings, ("gateway",)) as stack:
        yield stack


def add_user(stack: RunningStack, username: str, admin: bool = False):
    return accounts_for(stack.ctx).users.create(username, PASSWORD, admin=admin)


def login(http, username: str, password: str = PASSWORD):
    return http.post("/api/v1/auth/token", data={"username": username, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def signed_in(stack: RunningStack, username: str, admin: bool = False) -> dict:
    add_user(stack, username, admin)
    with stack.client() as http:
        answer = login(http, username)
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


def test_login_gives_an_expiring_bearer_token_that_identifies_the_user(gateway):
    add_user(gateway, "ada", admin=True)
    with gateway.client() as http:
        answer = login(http, "ada")
        assert answer.status_code == 200, answer.text
        token = answer.json()
        assert token["token_type"] == "bearer"
        assert token["expires_in"] == 7 * 60
        me = http.get("/api/v1/me", headers=bearer(token["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "ada" and me.json()["is_admin"] is True


def test_wrong_password_unknown_user_and_missing_token_are_401(gateway):
    add_user(gateway, "ada")
    with gateway.client() as http:
        assert login(http, "ada", "wrong password!").status_code == 401
        assert login(http, "nobody", PASSWORD).status_code == 401
        missing = http.get("/api/v1/me")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert http.get("/api/v1/me", headers=bearer("fla_made-up")).status_code == 401


def test_an_expired_access_token_is_refused(gateway):
    headers = signed_in(gateway, "ada")
    with gateway.client() as http:
        assert http.get("/api/v1/me", headers=headers).status_code == 200
        with gateway.ctx.database.session() as session:  # an hour passes for this token
            session.execute(
                update(TokenRecord)
                .where(TokenRecord.kind == "access")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        expired = http.get("/api/v1/me", headers=headers)
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]


def test_token_lifetime_follows_the_setting(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    database.migrate()
    user = UserStore(database).create("ada", PASSWORD)
    live = TokenStore(database, access_token_minutes=5).issue_access(user)
    dead = TokenStore(database, access_token_minutes=0).issue_access(user)
    store = TokenStore(database, access_token_minutes=5)
    assert store.user_for(live.token) == user
    assert store.user_for(dead.token) is None
    database.dispose()


def test_only_an_admin_creates_users(gateway):
    admin = signed_in(gateway, "root", admin=True)
    plain = signed_in(gateway, "bob")
    body = {"username": "carol", "password": "carol's long password"}
    with gateway.client() as http:
        assert http.post("/api/v1/users", json=body).status_code == 401
        forbidden = http.post("/api/v1/users", json=body, headers=plain)
        assert forbidden.status_code == 403, forbidden.text
        created = http.post("/api/v1/users", json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["username"] == "carol" and created.json()["is_admin"] is False
        assert http.post("/api/v1/users", json=body, headers=admin).status_code == 409
        short = http.post(
            "/api/v1/users", json={"username": "dave", "password": "short"}, headers=admin
        )
        assert short.status_code == 422
        assert "too short" in short.text
        assert login(http, "carol", "carol's long password").status_code == 200


def test_personal_tokens_work_as_bearer_are_listed_without_secret_and_revoke(gateway):
    headers = signed_in(gateway, "ada")
    other = signed_in(gateway, "bob")
    with gateway.client() as http:
        made = http.post("/api/v1/tokens", json={"name": "provision laptop"}, headers=headers)
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert http.get("/api/v1/me", headers=bearer(token)).json()["username"] == "ada"

        listed = http.get("/api/v1/tokens", headers=headers).json()
        assert [t["name"] for t in listed] == ["provision laptop"]
        assert token not in str(listed)  # shown once, never again
        assert http.get("/api/v1/tokens", headers=other).json() == []

        token_id = made.json()["id"]
        assert http.delete(f"/api/v1/tokens/{token_id}", headers=other).status_code == 404
        assert http.get("/api/v1/me", headers=bearer(token)).status_code == 200
        assert http.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 204
        assert http.get("/api/v1/me", headers=bearer(token)).status_code == 401
        assert http.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 404


def test_repeated_failed_logins_for_a_user_get_429_with_retry_after(gateway):
    add_user(gateway, "ada")
    with gateway.client() as http:
        for _ in range(USER_LIMIT):
            assert login(http, "ada", "not the password").status_code == 401
        limited = login(http, "ada")  # even the right password waits now
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["Retry-After"]) <= 300
        add_user(gateway, "bob")  # another user from the same address still may
        assert login(http, "bob").status_code == 200


def test_many_failed_logins_from_one_address_get_429(gateway):
    add_user(gateway, "ada")
    with gateway.client() as http:
        for attempt in range(ADDRESS_LIMIT):
            assert login(http, f"guess{attempt}", "not the password").status_code == 401
        limited = login(http, "ada")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("kind", ["real", "embedded"])
def test_cli_users_create(kind, tmp_path, request):
    settings = gateway_settings(kind, tmp_path, request)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE_")}
    if settings.database_url:
        env["FIELDLINE_DATABASE_URL"] = settings.database_url

    def create(username: str, password: str, *flags: str) -> subprocess.CompletedProcess:
        argv = ["users", "create", "--data-dir", str(settings.data_dir)]
        return subprocess.run(
            [sys.executable, "-m", "fieldline_backend.cli", *argv, "--username", username]
            + ["--password-stdin", *flags],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    made = create("ada", PASSWORD, "--admin")
    assert made.returncode == 0, made.stderr
    assert "created admin 'ada'" in made.stdout
    again = create("ada", PASSWORD)
    assert again.returncode == 2 and "exists already" in again.stderr
    short = create("bob", "short")
    assert short.returncode == 2 and "too short" in short.stderr
    assert PASSWORD not in made.stdout + made.stderr

    with running_stack(settings, ("gateway",)) as stack, stack.client() as http:
        answer = login(http, "ada")
        assert answer.status_code == 200, answer.text
        me = http.get("/api/v1/me", headers=bearer(answer.json()["access_token"])).json()
    assert me["is_admin"] is True


def test_create_user_in_rejects_empty_and_short_passwords(tmp_path):
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match="empty"):
        create_user_in(settings, "ada", "")
    with pytest.raises(ValueError, match="too short"):
        create_user_in(settings, "ada", "abc")
