"""What a command needs from outside: the board link (opened, or injected by a test) and
the API client (from --api/--token, the environment or the saved login)."""

from __future__ import annotations

import argparse
import os
import sys

from fieldline_provision import login_store
from fieldline_provision.api_client import FieldlineApi
from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import NotLoggedIn
from fieldline_provision.serial_board_link import SerialBoardLink


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Runtime:
    """What a command needs from outside: the board link and the API."""

    def __init__(self, args: argparse.Namespace, link: BoardLink | None) -> None:
        self.args = args
        self.injected_link = link

    def open_link(self, port: str, answer_timeout: float = 8.0) -> BoardLink:
        if self.injected_link is not None:
            return _Borrowed(self.injected_link)
        return SerialBoardLink.open(port, answer_timeout=answer_timeout)

    def attach_link(self, port: str) -> BoardLink:
        if self.injected_link is not None:
            return _Borrowed(self.injected_link)
        return SerialBoardLink.attach(port)

    def api(self) -> FieldlineApi:
        url = getattr(self.args, "api", None) or os.environ.get("FIELDLINE_API_URL")
        token = getattr(self.args, "token", None) or os.environ.get("FIELDLINE_API_TOKEN")
        saved = login_store.load()
        if saved and not url:
            url = saved.api_url
        if saved and not token and url == saved.api_url:
            token = saved.token
        if not url or not token:
            raise NotLoggedIn()
        return FieldlineApi(url, token)


class _Borrowed:
    """An injected link: used like an opened one, but closing it is the owner's job."""

    def __init__(self, link: BoardLink) -> None:
        self._link = link

    def __getattr__(self, name):
        return getattr(self._link, name)

    def close(self) -> None:
        pass
