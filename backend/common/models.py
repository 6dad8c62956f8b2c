"""Imports every service's table models so that Alembic and create_all see them all."""

import importlib

SERVICES_WITH_TABLES = ("gateway", "devices", "mqtt_auth", "ingestor", "storage", "alerts")


def import_all_models() -> None:
    for service in SERVICES_WITH_TABLES:
        try:
            importlib.import_module(f"fieldline_backend.{service}.models")
        except ModuleNotFoundError as error:
            if error.name != f"fieldline_backend.{service}.models":
                raise
