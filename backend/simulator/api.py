"""The public API calls the simulator makes: provision's client (devices are registered
exactly as `provision` registers a board) plus alert rules, history and read-back."""

from __future__ import annotations

from fieldline_provision.api_client import FieldlineApi
from fieldline_provision.errors import ApiRequestFailed, ProvisionError

__all__ = ["ApiRequestFailed", "ProvisionError", "SimulatorApi"]


class SimulatorApi(FieldlineApi):
    def me(self) -> dict:
        return self._request("GET", "/me").json()

    def devices_tagged(self, key: str, value: str) -> list[dict]:
        return self._request("GET", "/devices", params={"tag": f"{key}:{value}"}).json()

    def alert_rules(self) -> list[dict]:
        return self._request("GET", "/alert-rules").json()

    def create_alert_rule(self, rule: dict) -> dict:
        return self._request("POST", "/alert-rules", json=rule).json()

    def change_alert_rule(self, rule_id: str, changes: dict) -> dict:
        return self._request("PATCH", f"/alert-rules/{rule_id}", json=changes).json()

    def alerts(self, **params) -> list[dict]:
        return self._request("GET", "/alerts", params=params).json()

    def points(self, device_id: str, field: str, start: str | int, stop: str | int = "now"):
        """[[ts_ms, value], ...] of one value of a device between start and stop, every
        page of it (an answer holds at most FIELDLINE_QUERY_MAX_POINTS values)."""
        points: list = []
        params = {"fields": field, "start": str(start), "stop": str(stop)}
        while True:
            body = self._request("GET", f"/devices/{device_id}/telemetry", params=params).json()
            points += body["fields"].get(field, [])
            if body.get("next_start") is None:
                return points
            params["start"] = str(body["next_start"])

    # ---- OTA rollouts (docs/ota.md) ----------------------------------------------------

    def create_rollout(self, request: dict) -> dict:
        return self._request("POST", "/rollouts", json=request).json()

    def rollout(self, rollout_id: str) -> dict:
        return self._request("GET", f"/rollouts/{rollout_id}").json()
