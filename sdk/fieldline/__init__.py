"""Fieldline device SDK (MicroPython and CPython).

    from fieldline import Device

Modules: wire (MQTT packets), session (one MQTT connection), backoff (reconnect policy),
journal and buffer (offline storage), reading (payloads), clock (timestamps), port (what
differs per board), device (all of it together).
"""

__version__ = "0.1.0"

from fieldline.device import Device  # noqa: E402

__all__ = ["Device"]
