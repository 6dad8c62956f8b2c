"""The board runs this at every boot. It starts the Fieldline app (app.py) and makes sure a
boot never ends silently: when the app cannot start or stops (out of memory while importing
is the usual case on an ESP32's heap), it prints why, writes it to boot_error.txt (which
`provision verify` shows) and tries again after a pause that grows to 5 minutes, with the
modules unloaded and the heap collected. The journal on flash is untouched, so readings
taken before are sent once the app runs. Ctrl-C (what `provision` sends) stops the retries
and leaves the REPL to the host.

On the unix port: cd <board dir> && MICROPYPATH=lib:. micropython main.py
"""

import gc
import sys
import time

# With MICROPYPATH=lib:. the unix port loses its frozen modules (asyncio among them);
# a board always has them on sys.path.
if ".frozen" not in sys.path:
    sys.path.append(".frozen")

BOOT_ERROR = "boot_error.txt"
PAUSES_S = (5, 15, 60, 300)
APP_MODULES = ("app", "sensors", "status_led", "fieldline")


def forget_app():
    """Unload the app and the SDK, so the next attempt starts on a collected heap."""
    for name in list(sys.modules):
        if name.split(".")[0] in APP_MODULES:
            del sys.modules[name]
    gc.collect()


def report(attempt, exc, pause):
    print_exception = getattr(sys, "print_exception", None)
    if print_exception is not None:  # MicroPython: the traceback
        print_exception(exc)
    line = "attempt %d: %s: %s" % (attempt, type(exc).__name__, exc)
    print("fieldline: the app stopped (%s); retrying in %d s, Ctrl-C for the REPL" % (line, pause))
    try:
        with open(BOOT_ERROR, "w") as f:
            f.write(line + "\n")
    except OSError:
        pass  # a full or broken flash: the console line is all we can do


def config_ready():
    """config.json is there and is JSON; else an error naming the fix. Checked before the
    app and the SDK are imported: their import leaves interned names on the heap for
    good, which on a board's heap (from .py) can leave a retry without a large enough
    free block."""
    import json

    try:
        with open("config.json") as f:
            json.load(f)
    except OSError:
        raise OSError("no config.json on the board; run `provision` to write it") from None
    except ValueError as exc:
        raise ValueError("config.json is not valid JSON (%r); run `provision` again" % (exc,))


def boot():
    attempt = 0
    while True:
        attempt += 1
        try:
            config_ready()  # before the app's import: a missing file costs no heap
            import app

            app.run()
            return
        except KeyboardInterrupt:
            raise  # provision (or a person) wants the REPL
        except Exception as exc:  # noqa: BLE001 - MemoryError above all: never end silently
            pause = PAUSES_S[min(attempt, len(PAUSES_S)) - 1]
            forget_app()
            report(attempt, exc, pause)
            del exc
            gc.collect()
            time.sleep(pause)


boot()
