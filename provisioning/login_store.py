"""The saved login: API address and personal token, in the user's config dir, mode 0600."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_config_dir


@dataclass(frozen=True)
class SavedLogin:
    api_url: str
    token: str


def login_file() -> Path:
    # platformdirs honours XDG_CONFIG_HOME, which tests point at a temporary folder.
    return Path(user_config_dir("fieldline")) / "provision.json"


def load() -> SavedLogin | None:
    path = login_file()
    try:
        data = json.loads(path.read_text())
        return SavedLogin(api_url=data["api_url"], token=data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(login: SavedLogin) -> Path:
    path = login_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the token is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"api_url": login.api_url, "token": login.token}, out)
    os.chmod(path, 0o600)
    return path


def forget() -> bool:
    try:
        login_file().unlink()
        return True
    except FileNotFoundError:
        return False
