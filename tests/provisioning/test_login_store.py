"""The saved login: private file in the user's config dir."""

from __future__ import annotations

import stat

from fieldline_provision import login_store
from fieldline_provision.cli import main


def test_saved_token_is_readable_by_the_user_only(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = login_store.save(login_store.SavedLogin("http://api.example", "tok-123"))
    assert path.is_relative_to(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert login_store.load() == login_store.SavedLogin("http://api.example", "tok-123")
    assert login_store.forget() is True
    assert login_store.load() is None
    assert login_store.forget() is False


def test_logout_without_login_and_commands_needing_login(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("FIELDLINE_API_URL", raising=False)
    monkeypatch.delenv("FIELDLINE_API_TOKEN", raising=False)
    assert main(["logout"]) == 0
    assert "not logged in" in capsys.readouterr().out
    assert main(["device", "list"]) == 8
    assert "provision login --api URL" in capsys.readouterr().err
