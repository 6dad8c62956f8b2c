"""The console's routers, in the order they must be matched; the gateway includes them."""

from __future__ import annotations

from fastapi import APIRouter

from fieldline_backend.console import (
    pages_account,
    pages_auth,
    pages_devices,
    pages_fleet,
    pages_new_device,
    pages_rollouts,
    pages_rules,
)


def console_routers() -> list[APIRouter]:
    # /devices/new before /devices/{device_id}; the fleet forms before the confirmed
    # actions' POST /devices/{device_id}/{action}; the rollouts (with the device page's
    # /devices/{device_id}/update/live) before the devices too.
    return [
        pages_auth.router,
        pages_new_device.router,
        pages_fleet.router,
        pages_rollouts.router,
        pages_devices.router,
        pages_rules.router,
        pages_account.router,
    ]
