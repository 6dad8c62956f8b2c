"""The registry's failures as the internal API's answers (404; 409 and 503 from
mqtt_auth), shared by the registry's and the fleet's routes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException, status

from fieldline_backend.devices.mqtt_accounts import MqttAuthFailed
from fieldline_backend.devices.service import DeviceNotFound


def _not_found(device_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")


def mqtt_auth_failed(error: MqttAuthFailed) -> HTTPException:
    if error.status == 404:  # not transient: retrying would answer 503 for ever
        return HTTPException(
            status.HTTP_409_CONFLICT,
            f"the device's MQTT account is gone ({error}); delete the device and register it again",
        )
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the MQTT account service did not complete the change ({error}); nothing was "
        "changed, try again shortly",
        headers={"Retry-After": "5"},
    )


@contextmanager
def registry_answers(device_id: str) -> Iterator[None]:
    """The registry's failures as this API's answers (404, 503 with Retry-After)."""
    try:
        yield
    except DeviceNotFound as error:
        raise _not_found(device_id) from error
    except MqttAuthFailed as error:
        raise mqtt_auth_failed(error) from error
