"""The console's routers, in the order they must be matched; the gateway includes them."""

from __future__ import annotations

from fastapi import APIRouter

from fieldline_backend.console import (
    pages_account,
    pages_auth,
    pages_devices,
    pages_fleet,
    pages_new_device,
    pages_rules,
)


def console_routers() -> list[APIRouter]:
    # /devices/new before /devices/{device_id}; the fleet forms before the confirmed
    # actions' POST /devices/{device_id}/{action}.
    return [
        pages_auth.router,
        pages_new_device.router,
        pages_fleet.router,
        pages_devices.router,
        pages_rules.router,
        pages_account.router,
    ]
