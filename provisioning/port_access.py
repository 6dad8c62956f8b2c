"""Why a serial port cannot be opened, or should not be used, in terms a person can act on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import serial

from fieldline_provision.errors import NoSuchPort, PortBusy, PortPermission, ProvisionError


def port_holders(port: str, proc: Path = Path("/proc")) -> list[str]:
    """'name (pid N)' of every other process that has `port` open, found through
    /proc/*/fd, the one holding its exclusive lock first. The program behind a
    pseudo-terminal (the process holding its master side: the test rig, an emulator) is
    the board's end, not a competing reader, and is left out. Empty when none is visible
    (other users' processes are not readable without root)."""
    try:
        target = os.path.realpath(port)
        node = os.stat(target)
    except OSError:
        return []
    pty_index = _pty_index(target)
    locker = _lock_holder(node, proc)
    me = os.getpid()
    found: list[tuple[bool, str]] = []
    for entry in proc.glob("[0-9]*"):
        pid = int(entry.name)
        if pid == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
            opened = any(os.path.realpath(fd) == target for fd in fds)
            if not opened or (pty_index is not None and _holds_master(entry, fds, pty_index)):
                continue
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        found.append((pid != locker, f"{name} (pid {pid})"))
    return [holder for _, holder in sorted(found)]


def _pty_index(path: str) -> str | None:
    parent, _, name = path.rpartition("/")
    return name if parent == "/dev/pts" and name.isdigit() else None


def _holds_master(entry: Path, fds: list[Path], index: str) -> bool:
    for fd in fds:
        if os.path.realpath(fd) != "/dev/ptmx":
            continue
        try:
            info = (entry / "fdinfo" / fd.name).read_text()
        except OSError:
            continue
        if f"tty-index:\t{index}\n" in info:
            return True
    return False


def _lock_holder(node: os.stat_result, proc: Path) -> int | None:
    """The pid holding a flock on the device node (pyserial's exclusive=True, mpremote)."""
    wanted = f"{os.major(node.st_dev):02x}:{os.minor(node.st_dev):02x}:{node.st_ino}"
    try:
        lines = (proc / "locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == wanted:
            return int(parts[4]) if parts[4].isdigit() else None
    return None


def refuse_shared_port(port: str) -> None:
    """PortBusy when another program has the port open without locking it (`cat`,
    `screen`, a serial monitor): it would take some of the board's answers and break the
    exchange at random, so it is named instead."""
    holders = port_holders(port)
    if holders:
        raise PortBusy(port, holders)


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
            return PortBusy(port, port_holders(port))
        return ProvisionError(f"cannot open {port}: {text}")
    probe.close()
    return PortBusy(port, port_holders(port))
