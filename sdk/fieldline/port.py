"""What differs between an ESP32, the MicroPython unix port and CPython.

Everything board-specific the SDK needs goes through here: ticks, wall-clock time and NTP,
Wi-Fi, the watchdog, reset, and opening a TCP (or TLS) stream. On the unix port and CPython
the host network is used: an empty Wi-Fi SSID means "already connected".
"""

import sys
import time

try:
    import asyncio
except ImportError:  # pragma: no cover - every board has it; the unix port needs .frozen
    try:
        import uasyncio as asyncio  # type: ignore
    except ImportError:
        raise ImportError(
            "fieldline needs asyncio: on the MicroPython unix port put .frozen on the path "
            "(MICROPYPATH=lib:.:.frozen); a board has it built in"
        )

MICROPYTHON = sys.implementation.name == "micropython"

# Linux and lwIP agree on these values; the unix port's socket module lacks the names.
IPPROTO_TCP = 6
TCP_NODELAY = 1

if MICROPYTHON:
    ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
    ticks_diff = time.ticks_diff  # type: ignore[attr-defined]
    ticks_add = time.ticks_add  # type: ignore[attr-defined]

    async def sleep_ms(ms):
        await asyncio.sleep_ms(ms)  # type: ignore[attr-defined]

else:
    # CPython only (this branch never runs on a board, whose time has no monotonic).
    _T0 = time.monotonic()  # type: ignore[attr-defined]

    def ticks_ms():
        return int((time.monotonic() - _T0) * 1000)  # type: ignore[attr-defined]

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    async def sleep_ms(ms):
        await asyncio.sleep(ms / 1000)


# MicroPython on bare-metal ports counts seconds from 2000-01-01, the unix port from 1970.
_EPOCH_OFFSET_MS = 946684800000 if time.gmtime(0)[0] == 2000 else 0
# A board whose clock says a year before this has not been set (no RTC battery, no NTP).
_FIRST_PLAUSIBLE_YEAR = 2024
_synced = False


def epoch_ms():
    """Milliseconds since 1970-01-01 UTC by the local clock (see time_is_synced)."""
    return time.time_ns() // 1000000 + _EPOCH_OFFSET_MS


def time_is_synced():
    """True once the wall clock can be trusted: NTP answered, or the host keeps time."""
    global _synced
    if not _synced and time.gmtime()[0] >= _FIRST_PLAUSIBLE_YEAR:
        _synced = True
    return _synced


def sync_time():
    """One NTP attempt where the board has ntptime; True when the clock is set."""
    global _synced
    try:
        import ntptime  # type: ignore[import-not-found]
    except ImportError:
        return time_is_synced()  # host port: the operating system keeps time
    try:
        ntptime.settime()
        _synced = True
    except Exception as exc:  # noqa: BLE001 - ntptime raises OSError or IndexError
        print("fieldline: NTP failed:", repr(exc))
    return _synced


# ---- Wi-Fi -----------------------------------------------------------------------------


class Wifi:
    """Station-mode Wi-Fi; an empty SSID means the host network (unix port, CPython)."""

    def __init__(self, ssid, password):
        self.ssid = ssid or ""
        self.password = password or ""
        self._wlan = None
        if self.ssid:
            import network  # type: ignore[import-not-found]

            self._wlan = network.WLAN(network.STA_IF)

    def is_connected(self):
        if self._wlan is None:
            return True
        return self._wlan.isconnected()

    async def connect(self, timeout_ms=15000):
        """(Re)join the network; True when connected within timeout_ms."""
        wlan = self._wlan
        if wlan is None:
            return True
        if wlan.isconnected():
            return True
        wlan.active(True)
        try:
            wlan.connect(self.ssid, self.password)
        except OSError as exc:
            print("fieldline: Wi-Fi connect failed:", repr(exc))
            return False
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < timeout_ms:
            if wlan.isconnected():
                return True
            await sleep_ms(200)
        try:
            wlan.disconnect()
        except OSError:
            pass
        return False


# ---- watchdog and reset ----------------------------------------------------------------


class Watchdog:
    """machine.WDT where the board has one; a no-op elsewhere."""

    def __init__(self, timeout_ms):
        self._wdt = None
        if timeout_ms:
            try:
                import machine

                self._wdt = machine.WDT(timeout=timeout_ms)  # type: ignore[attr-defined]
            except (ImportError, AttributeError):
                self._wdt = None

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()


def reset():
    """Restart the board; ends the process on host ports (a supervisor, like the HIL
    rig, starts it again as a board boots again)."""
    try:
        import machine

        machine.reset()  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        pass
    if MICROPYTHON:  # the unix port: SystemExit would leave `micropython -i` in its REPL
        import os

        os.system("kill -9 $PPID")  # the shell's parent is this process
    sys.exit(70)


def collect_garbage():
    try:
        import gc

        gc.collect()
    except ImportError:  # pragma: no cover
        pass


# ---- TLS and TCP streams ---------------------------------------------------------------


def pem_to_der(pem):
    """The first certificate of a PEM text as DER bytes (mbedtls wants DER via cadata)."""
    import binascii

    if isinstance(pem, (bytes, bytearray)):
        pem = pem.decode()
    begin = pem.find("-----BEGIN CERTIFICATE-----")
    end = pem.find("-----END CERTIFICATE-----")
    if begin < 0 or end < 0:
        raise ValueError("mqtt.ca is not a PEM certificate (no BEGIN/END CERTIFICATE lines)")
    body = pem[begin + 27 : end]
    return binascii.a2b_base64("".join(body.split()))


def tls_context(ca_pem):
    """A client TLS context that requires the server certificate to chain to ca_pem."""
    import ssl

    if not ca_pem:
        raise ValueError("mqtt.tls is on but mqtt.ca is empty: give the broker's CA certificate")
    if MICROPYTHON:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined] # stubs omit it
        ctx.load_verify_locations(cadata=pem_to_der(ca_pem))
        return ctx
    if isinstance(ca_pem, (bytes, bytearray)):
        ca_pem = ca_pem.decode()
    return ssl.create_default_context(cadata=ca_pem)  # type: ignore[attr-defined] # CPython


if MICROPYTHON:

    def _writable(sock):
        # asyncio's own open_connection waits like this; we need the raw socket first to
        # set TCP_NODELAY, which the TLS wrapper no longer exposes.
        yield asyncio.core._io_queue.queue_write(sock)  # type: ignore[attr-defined]

    async def _open(host, port, ssl_ctx, server_hostname):
        import socket

        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        sock = socket.socket(addr[0], addr[1], addr[2])
        try:
            sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        sock.setblocking(False)
        try:
            sock.connect(addr[-1])
        except OSError as exc:
            if exc.errno != 115:  # EINPROGRESS
                sock.close()
                raise
        if ssl_ctx is not None:
            sock = ssl_ctx.wrap_socket(
                sock, server_hostname=server_hostname or host, do_handshake_on_connect=False
            )
            sock.setblocking(False)
        stream = asyncio.StreamWriter(sock, {})  # type: ignore[call-arg]
        await _writable(sock)  # type: ignore[misc]
        return stream, stream

    async def read_into(reader, mv):
        """Fill the memoryview mv from the stream; OSError when the peer closed."""
        got = 0
        want = len(mv)
        while got < want:
            n = await reader.readinto(mv[got:])
            if n is None:
                continue
            if n == 0:
                raise OSError(104, "connection closed by the broker")
            got += n

else:

    async def _open(host, port, ssl_ctx, server_hostname):
        import socket

        if ssl_ctx is not None:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_ctx, server_hostname=server_hostname or host
            )
        else:
            reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return reader, writer

    async def read_into(reader, mv):
        try:
            data = await reader.readexactly(len(mv))
        except asyncio.IncompleteReadError:
            raise OSError(104, "connection closed by the broker") from None
        mv[:] = data


async def open_stream(host, port, ssl_ctx=None, server_hostname=None, timeout_ms=10000):
    """Resolve host now (DNS on every attempt) and open a stream with TCP_NODELAY set."""
    try:
        return await asyncio.wait_for(
            _open(host, port, ssl_ctx, server_hostname), timeout_ms / 1000
        )
    except asyncio.TimeoutError:
        raise OSError(110, "connect to %s:%d timed out" % (host, port)) from None


async def write_all(writer, data, timeout_ms):
    """Write one whole packet and wait until the kernel took it (a stalled link times out)."""
    if not MICROPYTHON:
        data = bytes(data)  # CPython's transport may keep a view into our reused buffer
    writer.write(data)
    try:
        await asyncio.wait_for(writer.drain(), timeout_ms / 1000)
    except asyncio.TimeoutError:
        raise OSError(110, "write stalled for %d ms" % timeout_ms) from None


def close_stream(writer):
    """Close the socket now. MicroPython's Stream.close() is a no-op in some releases (only
    wait_closed() closes), which would leak one socket per reconnect on a board that has
    only a handful; so close the socket itself (idempotent)."""
    try:
        if MICROPYTHON:
            writer.s.close()
        else:
            writer.close()
    except Exception:  # noqa: BLE001 - closing a broken socket may raise anything
        pass
