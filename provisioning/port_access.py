"""Why a serial port cannot be opened, in terms a person can act on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import serial

from fieldline_provision.errors import NoSuchPort, PortBusy, PortPermission, ProvisionError


def port_holder(port: str, proc: Path = Path("/proc")) -> str | None:
    """'name (pid N)' of a process that has `port` open, found through /proc/*/fd; None
    when none is visible (other users' processes are not readable without root)."""
    try:
        target = os.path.realpath(port)
    except OSError:
        return None
    me = os.getpid()
    for entry in proc.glob("[0-9]*"):
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.path.realpath(fd) == target:
                    name = (entry / "comm").read_text().strip()
                    return f"{name} (pid {pid})"
        except OSError:
            continue
    return None


def diagnose_open_failure(port: str) -> ProvisionError:
    """Open the port once more, directly, to learn why the transport could not."""
    if not os.path.exists(port):
        return NoSuchPort(port)
    try:
        probe = serial.Serial(port, exclusive=True)
    except serial.SerialException as error:
        cause = getattr(error, "errno", None)
        text = str(error)
        if cause == errno.EACCES or "Permission denied" in text:
            return PortPermission(port)
        if cause == errno.ENOENT:
            return NoSuchPort(port)
        if cause in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text:
            return PortBusy(port, port_holder(port))
        return ProvisionError(f"cannot open {port}: {text}")
    probe.close()
    return PortBusy(port, port_holder(port))
