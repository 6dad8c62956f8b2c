"""Every provisioning test gets its own config dir: no saved login leaks in or out."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("FIELDLINE_API_URL", raising=False)
    monkeypatch.delenv("FIELDLINE_API_TOKEN", raising=False)
