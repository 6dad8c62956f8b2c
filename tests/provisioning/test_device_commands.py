"""`provision login` and `provision device ...` against a running backend (PostgreSQL +
Mosquitto): the API contract as provision uses it, and its errors as one line each."""

from __future__ import annotations

import io

import httpx
import pytest

from fieldline_provision import login_store
from fieldline_provision.cli import main
from hil_tests.backend import running_backend


@pytest.fixture
def backend(tmp_path, pg_url):
    with running_backend(tmp_path / "backend", pg_url) as running:
        yield running


def login(backend, monkeypatch, password=None) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO((password or backend.password) + "\n"))
    argv = ["login", "--api", backend.api_url, "--username", backend.username]
    return main([*argv, "--password-stdin"])


def test_login_saves_a_personal_token_and_device_commands_use_it(backend, monkeypatch, capsys):
    assert login(backend, monkeypatch) == 0
    saved = login_store.load()
    assert saved.api_url == backend.api_url
    assert saved.token not in capsys.readouterr().out

    with httpx.Client(base_url=backend.api_url) as http:
        answer = http.post(
            "/api/v1/devices",
            json={"name": "greenhouse", "metadata": {}},
            headers={"Authorization": f"Bearer {saved.token}"},
        )
    assert answer.status_code == 201, answer.text
    device_id = answer.json()["id"]

    assert main(["device", "list"]) == 0
    assert device_id in capsys.readouterr().out
    assert main(["device", "show", device_id]) == 0
    shown = capsys.readouterr().out
    assert "greenhouse" in shown and "online:      False" in shown
    assert main(["device", "rotate", device_id]) == 0
    assert f"--device-id {device_id}" in capsys.readouterr().out
    assert main(["device", "delete", device_id, "--yes"]) == 0
    capsys.readouterr()
    assert backend.device_ids() == []
    assert main(["device", "show", device_id]) == 9
    assert "HTTP 404" in capsys.readouterr().err


def test_wrong_password_and_refused_token_say_what_to_do(backend, monkeypatch, capsys):
    assert login(backend, monkeypatch, password="not-the-password") == 9
    assert "wrong user name or password" in capsys.readouterr().err
    argv = ["device", "list", "--api", backend.api_url, "--token", "expired-or-made-up"]
    assert main(argv) == 8
    err = capsys.readouterr().err
    assert "refused the token (expired or revoked)" in err and "provision login" in err


def test_logout_forgets_the_token(backend, monkeypatch, capsys):
    assert login(backend, monkeypatch) == 0
    assert main(["logout"]) == 0
    assert login_store.load() is None
    assert main(["device", "list"]) == 8
