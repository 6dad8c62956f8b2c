"""The console over plain HTTP (no browser): session cookie flags, CSRF refusals,
redirects to the login page, owner scoping, and the API untouched by cookies."""

from __future__ import annotations

import re
from urllib.parse import unquote

import httpx
import pytest

from fieldline_backend.console.sessions import SESSION_COOKIE

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(stack, person) -> httpx.Client:
    client = httpx.Client(base_url=stack.base_url, timeout=30)
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "username": person.username,
            "password": person.password,
            "csrf_token": CSRF.search(page.text).group(1),
            "next": "/devices",
        },
    )
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: httpx.Client, path: str = "/tokens") -> str:
    return CSRF.search(client.get(path).text).group(1)


def test_login_sets_an_httponly_samesite_session_cookie(console_stack):
    client = httpx.Client(base_url=console_stack.base_url)
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "username": console_stack.ada.username,
            "password": console_stack.ada.password,
            "csrf_token": CSRF.search(page.text).group(1),
            "next": "/devices/x?range=1d",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/devices/x?range=1d"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    # Plain http on 127.0.0.1 (no https public URL): a Secure cookie would never come back.
    assert "secure" not in flags


def test_wrong_password_and_missing_login_csrf_are_refused(console_stack):
    client = httpx.Client(base_url=console_stack.base_url)
    token = CSRF.search(client.get("/login").text).group(1)
    wrong = client.post(
        "/login", data={"username": "ada", "password": "not-it-at-all", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
    assert SESSION_COOKIE not in client.cookies
    forged = httpx.post(
        console_stack.base_url + "/login",
        data={"username": "ada", "password": console_stack.ada.password},
    )
    assert forged.status_code == 403 and SESSION_COOKIE not in forged.cookies


@pytest.mark.parametrize(
    "path", ["/devices", "/rules", "/rules/new", "/alerts?level=crit", "/tokens", "/devices/live"]
)
def test_pages_without_a_session_redirect_to_login(console_stack, path):
    answer = httpx.get(console_stack.base_url + path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert unquote(answer.headers["location"].removeprefix("/login?next=")) == path


def test_an_api_token_in_the_cookie_is_not_a_session(console_stack):
    token = console_stack.ada.api.headers["Authorization"].split()[1]
    answer = httpx.get(console_stack.base_url + "/devices", cookies={SESSION_COOKIE: token})
    assert answer.status_code == 303


def test_state_changing_posts_without_csrf_are_refused(console_stack):
    ada = console_stack.ada
    client = sign_in(console_stack, ada)
    device = ada.devices["Greenhouse 1"]
    rules_before = ada.api.get("/api/v1/alert-rules").json()
    tokens_before = ada.api.get("/api/v1/tokens").json()
    posts = {
        "/rules/save": {
            "name": "forged", "device_id": device["id"], "field": "temperature",
            "condition": "above", "crit": "1", "recipients": "x@example.com", "action": "save",
        },
        "/rules/preview": {"name": "x", "device_id": device["id"], "crit": "1"},
        "/tokens": {"name": "forged"},
        f"/devices/{device['id']}/disable": {},
        f"/devices/{device['id']}/rotate": {},
        "/logout": {},
    }  # fmt: skip
    for path, form in posts.items():
        for token in (None, "0" * 64, csrf_of(client)[:-1]):
            body = dict(form, **({"csrf_token": token} if token is not None else {}))
            answer = client.post(path, data=body)
            assert answer.status_code == 403, (path, token, answer.status_code, answer.text)
            assert "security token" in answer.text
    assert ada.api.get("/api/v1/alert-rules").json() == rules_before
    assert ada.api.get("/api/v1/tokens").json() == tokens_before
    assert ada.api.get(f"/api/v1/devices/{device['id']}").json()["enabled"] is True
    assert client.get("/devices").status_code == 200  # still signed in: logout was refused
    # Another session's token does not fit this session either.
    other = sign_in(console_stack, ada)
    answer = client.post("/tokens", data={"name": "x", "csrf_token": csrf_of(other)})
    assert answer.status_code == 403


def test_with_the_token_a_form_works(console_stack):
    client = sign_in(console_stack, console_stack.ada)
    answer = client.post("/tokens", data={"name": "from the form", "csrf_token": csrf_of(client)})
    assert answer.status_code == 201
    token = re.search(r"flp_[\w-]+", answer.text).group(0)
    assert answer.headers["cache-control"] == "no-store"
    # The new token works on the API; a cookie alone never does.
    assert (
        httpx.get(
            console_stack.base_url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        ).json()["username"]
        == console_stack.ada.username
    )
    cookie_only = httpx.get(
        console_stack.base_url + "/api/v1/devices",
        cookies={SESSION_COOKIE: client.cookies[SESSION_COOKIE]},
    )
    assert cookie_only.status_code == 401


def test_another_users_device_is_not_found_and_never_listed(console_stack):
    client = sign_in(console_stack, console_stack.ada)
    shed = console_stack.bob.devices["Bob's shed"]
    for suffix in ("", "/live", "/rotate"):
        path = f"/devices/{shed['id']}{suffix}"
        assert client.get(path).status_code == 404, path
    answer = client.post(f"/devices/{shed['id']}/disable", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 404
    assert console_stack.bob.api.get(f"/api/v1/devices/{shed['id']}").json()["enabled"] is True
    listing = client.get("/devices").text + client.get("/devices/live").text
    assert shed["id"] not in listing and "Bob" not in listing
    for device in console_stack.ada.devices.values():
        assert device["id"] in listing


def test_pages_are_not_cached_framed_or_sniffed(console_stack):
    client = sign_in(console_stack, console_stack.ada)
    for path in ("/devices", "/tokens", "/login", "/devices/dev-nosuchdevice1"):
        answer = client.get(path)
        assert answer.headers["cache-control"] == "no-store", path
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
        assert answer.headers["x-content-type-options"] == "nosniff"
    missing = client.get("/devices/dev-nosuchdevice1")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "no such device of yours" in missing.text


def test_logout_ends_the_session_everywhere(console_stack):
    client = sign_in(console_stack, console_stack.bob)
    cookie = client.cookies[SESSION_COOKIE]
    answer = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    # The old cookie, replayed, is dead: the session row is gone, not just the cookie.
    replay = httpx.get(console_stack.base_url + "/devices", cookies={SESSION_COOKIE: cookie})
    assert replay.status_code == 303


def test_bad_range_and_width_are_a_message(console_stack):
    client = sign_in(console_stack, console_stack.ada)
    device = console_stack.ada.devices["Greenhouse 1"]
    page = client.get(f"/devices/{device['id']}?range=custom&start=2026-11-20T10:00&stop=soon")
    assert page.status_code == 200 and "is not a time" in page.text
    live = client.get(f"/devices/{device['id']}/live?range=3y")
    assert live.status_code == 400 and "1h, 1d, 7d, custom" in live.text
    assert client.get(f"/devices/{device['id']}/live?width=0").status_code == 422


def test_names_are_escaped_not_run(console_stack):
    bob = console_stack.bob
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    answer = bob.api.post("/api/v1/devices", json={"name": hostile, "metadata": {"note": hostile}})
    assert answer.status_code == 201, answer.text
    device = answer.json()
    try:
        client = sign_in(console_stack, bob)
        for path in ("/devices", f"/devices/{device['id']}"):
            page = client.get(path).text
            assert "<script>alert" not in page and "<img src=x" not in page, path
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page, path
    finally:
        bob.api.delete(f"/api/v1/devices/{device['id']}")


def test_live_fragments_are_gzipped_pages_with_tokens_are_not(console_stack):
    client = sign_in(console_stack, console_stack.ada)
    device = console_stack.ada.devices["Greenhouse 1"]
    live = client.get(f"/devices/{device['id']}/live?range=1d&width=800")
    assert live.headers["content-encoding"] == "gzip" and "<figure" in live.text
    assert int(live.headers["content-length"]) * 2 < len(live.content)
    page = client.get(f"/devices/{device['id']}")
    assert "content-encoding" not in page.headers and "csrf_token" in page.text
