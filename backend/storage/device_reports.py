"""What devices report about themselves besides telemetry (config/reported,
commands/result and ota/reported), passed on to the devices service, which owns it. Called by the
storage worker before it acks the batch, so a report is acknowledged only once the
devices service recorded it; when it cannot be reached the batch is held and retried
(DirectoryUnavailable), as for mqtt_auth.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from fieldline_backend.common.topics import COMMAND_RESULT, CONFIG_REPORTED, OTA_REPORTED
from fieldline_backend.devices.command_schemas import CommandOutcome, CommandReport
from fieldline_backend.storage.devices import DirectoryUnavailable

# The devices service's internal route for each kind of report.
ROUTES = {
    CONFIG_REPORTED: "config/reported",
    COMMAND_RESULT: "commands/reported",
    OTA_REPORTED: "ota/reported",
}


class DeviceReports:
    def __init__(self, client_factory: Callable[[], httpx.Client]):
        self.client_factory = client_factory
        self._client: httpx.Client | None = None

    def send(self, kind: str, device_id: str, report: BaseModel, arrival_ms: int) -> None:
        if self._client is None:
            self._client = self.client_factory()
        at = datetime.fromtimestamp(arrival_ms / 1000, UTC)
        if isinstance(report, CommandReport):  # the devices service takes one state
            report = CommandOutcome.of(report, at)
        body = report.model_dump(mode="json") | {"at": at.isoformat()}
        path = f"/internal/devices/{quote(device_id, safe='')}/{ROUTES[kind]}"
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as error:
            raise DirectoryUnavailable(f"devices unreachable: {error!r}") from error
        if response.status_code == 404:
            return  # the device (or command) is gone: nothing to record
        if response.status_code != 204:
            raise DirectoryUnavailable(
                f"devices answered {response.status_code} for a {kind} report of {device_id!r}"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
