"""Issue 13, item 9: failed-login limits hold under parallel guessing, on PostgreSQL and
SQLite, against a real `fieldline up`; X-Forwarded-For counts only from a trusted proxy.

A 401 answer means the password was checked (wrong); a 429 means the limit refused the
attempt before any check. So the number of 401s is the number of password checks.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from fieldline_backend.common.db import Database
from fieldline_backend.gateway.login_limits import USER_LIMIT, LoginLimits
from tests.hostile_api.server import CSRF, fieldline_up

PARALLEL = 40
ADDRESS_LIMIT = 3  # FIELDLINE_LOGIN_ADDRESS_LIMIT for the proxy test: fewer slow logins


def parallel_wrong_logins(server, username: str, count: int, console: bool = False) -> Counter:
    """`count` wrong-password logins for one user, released at the same instant, on the
    API's token route or (console=True) the console's sign-in form."""
    start = threading.Barrier(count)

    def attempt(_: int) -> int:
        with server.client() as client:
            form = {"username": username, "password": "wrong-guess-123"}
            if console:
                form["csrf_token"] = CSRF.search(client.get("/login").text).group(1)
            start.wait()
            path = "/login" if console else "/api/v1/auth/token"
            return client.post(path, data=form).status_code

    with ThreadPoolExecutor(count) as pool:
        return Counter(pool.map(attempt, range(count)))


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_forty_parallel_wrong_passwords_get_at_most_five_password_checks(
    database, request, tmp_path
):
    settings = (
        {"database_url": request.getfixturevalue("pg_url")} if database == "postgresql" else {}
    )
    with fieldline_up(tmp_path / "data", serve="gateway", **settings) as server:
        username, password = server.add_user()
        statuses = parallel_wrong_logins(server, username, PARALLEL)
        assert statuses == Counter({401: USER_LIMIT, 429: PARALLEL - USER_LIMIT}), (
            f"expected {USER_LIMIT} password checks (401) and {PARALLEL - USER_LIMIT} refusals "
            f"(429) out of {PARALLEL} parallel wrong logins, got {dict(statuses)}"
        )
        right = server.login(username, password)
        assert right.status_code == 429, (
            f"the right password while locked: expected 429, got {right.status_code} {right.text}"
        )
        assert 1 <= int(right.headers["Retry-After"]) <= 300, right.headers
        # The console's sign-in form counts the same way (another user, same address).
        username, _ = server.add_user()
        statuses = parallel_wrong_logins(server, username, PARALLEL, console=True)
        assert statuses == Counter({401: USER_LIMIT, 429: PARALLEL - USER_LIMIT}), (
            f"console form: expected {USER_LIMIT} x 401 and {PARALLEL - USER_LIMIT} x 429, "
            f"got {dict(statuses)}"
        )


@pytest.mark.parametrize(
    ("trusted_proxies", "counted_on_forwarded_address"),
    [("", False), ("127.0.0.1", True)],
    ids=["default-no-proxy-trusted", "trusted-proxy"],
)
def test_forwarded_for_changes_the_counted_address_only_from_a_trusted_proxy(
    trusted_proxies, counted_on_forwarded_address, tmp_path
):
    settings = {"trusted_proxies": trusted_proxies} if trusted_proxies else {}
    settings["login_address_limit"] = str(ADDRESS_LIMIT)
    with fieldline_up(tmp_path / "data", serve="gateway", **settings) as server:
        # ADDRESS_LIMIT failures, each for another user (no user limit is reached), all
        # claiming to come from one address...
        for i in range(ADDRESS_LIMIT):
            failed = server.login(
                f"nobody{i}", "wrong-guess-123", **{"X-Forwarded-For": "203.0.113.7"}
            )
            assert failed.status_code == 401, f"failure {i}: got {failed.status_code}"
        # ...then a caller claiming another address.
        other = server.login(
            "nobody-else", "wrong-guess-123", **{"X-Forwarded-For": "198.51.100.9"}
        )
        again = server.login("nobody-more", "wrong-guess-123", **{"X-Forwarded-For": "203.0.113.7"})
    if counted_on_forwarded_address:
        assert (other.status_code, again.status_code) == (401, 429), (
            "with the proxy trusted, failures count against the forwarded address: expected "
            f"(401 for another address, 429 for the used-up one), got "
            f"({other.status_code}, {again.status_code})"
        )
    else:
        assert (other.status_code, again.status_code) == (429, 429), (
            "with no proxy trusted, X-Forwarded-For must not change the counted address "
            f"(all from 127.0.0.1): expected (429, 429), got ({other.status_code}, "
            f"{again.status_code})"
        )


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+psycopg://")
    else:
        url = f"sqlite:///{tmp_path / 'limits.db'}"
    db = Database(url)
    db.migrate()
    yield db
    db.dispose()


def test_slots_are_given_back_on_success_and_free_again_after_the_window(database):
    limits = LoginLimits(database, user_limit=2, address_limit=3, window_seconds=1)
    first = limits.reserve("ada", "10.0.0.1")
    assert first.retry_after is None and len(first.slots) == 2, first
    limits.succeeded(first)  # a right password: the user's count cleared, the address slot back
    taken = [limits.reserve("ada", "10.0.0.1") for _ in range(2)]  # two wrong passwords
    assert all(r.retry_after is None for r in taken), taken
    refused = limits.reserve("ada", "10.0.0.1")
    assert refused.retry_after == 1, f"expected a refusal with Retry-After 1, got {refused}"
    other_user = limits.reserve("bob", "10.0.0.1")  # the address has one attempt left
    assert other_user.retry_after is None, f"ada's refusal used an address slot: {other_user}"
    assert limits.reserve("cy", "10.0.0.1").retry_after == 1, "the address should be used up"
    time.sleep(1.1)
    again = limits.reserve("ada", "10.0.0.1")
    assert again.retry_after is None, f"after the window: expected a new attempt, got {again}"
