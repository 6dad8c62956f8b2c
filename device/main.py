"""The board runs this at every boot. It starts the Fieldline app (app.py) and makes sure a
boot never ends silently: when the app cannot start or stops (out of memory while importing
is the usual case on an ESP32's heap), it prints why, writes it to boot_error.txt (which
`provision verify` shows) and tries again after a pause that grows to 5 minutes, with the
modules unloaded and the heap collected. The journal on flash is untouched, so readings
taken before are sent once the app runs. Ctrl-C (what `provision` sends) stops the retries
and leaves the REPL to the host.

OTA updates (docs/ota.md): only when <data dir>/ota/state.json exists (one stat; the data
dir is config.json's buffer.dir) is loader.py imported, before the app, to switch to a
staged update or count a trial boot. A version on trial runs the app's main() under a
deadline (ota.trial_s in config.json, 600 s by default): not confirmed by its Updater by
then, it is rolled back and the board resets. An app on trial that raises at import is
rolled back at once and the old one imported in its place; one that stops with an
exception is rolled back and the board resets into the old version. Past ota.trial_boots
(3) boots on trial, the loader rolls back by itself. Failures of a version not on trial
are retried as above.

On the unix port: cd <board dir> && MICROPYPATH=lib:. micropython main.py
"""

import gc
import os
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
    free block. Returns the config."""
    import json

    try:
        with open("config.json") as f:
            return json.load(f)
    except OSError:
        raise OSError("no config.json on the board; run `provision` to write it") from None
    except ValueError as exc:
        raise ValueError("config.json is not valid JSON (%r); run `provision` again" % (exc,))


def update_step():
    """An OTA update under way: let the loader take its step. (data dir, trial seconds)
    when the app runs on trial, else None."""
    try:
        config = config_ready()
    except Exception:  # noqa: BLE001 - the boot loop says what is wrong with it
        config = {}
    data_dir = (config.get("buffer") or {}).get("dir") or "fieldline_data"
    try:
        os.stat(data_dir + "/ota/state.json")
    except OSError:
        return None  # the usual boot: no update, loader.py not even imported
    ota = config.get("ota") or {}
    try:
        import loader

        state = loader.boot(data_dir, "", int(ota.get("trial_boots") or 3))
        trial_s = (loader.read_state(data_dir) or {}).get("trial_s")
    except Exception as exc:  # noqa: BLE001 - a broken flash must not stop the boot
        print("fieldline: the OTA loader failed:", repr(exc))
        state = None
    sys.modules.pop("loader", None)  # its heap back: needed again only on a failure
    gc.collect()
    if state != "trial":
        return None
    return data_dir, float(ota.get("trial_s") or trial_s or 600)


def roll_back(trial, exc):
    import loader

    loader.roll_back(trial[0], "%s: %s" % (type(exc).__name__, exc))


def reset_board():
    try:
        from fieldline import port

        port.reset()  # machine.reset() on a board; ends the process on the unix port
    except ImportError:
        pass
    import machine

    machine.reset()


async def deadline(trial):
    import asyncio

    await asyncio.sleep(trial[1])
    import loader

    if (loader.read_state(trial[0]) or {}).get("state") == "trial":
        loader.roll_back(trial[0], "not confirmed within %d s" % trial[1])
        reset_board()


def run_on_trial(app, trial):
    """app.main() with the deadline watching it (an app without main(): app.run())."""
    main = getattr(app, "main", None)
    if main is None:
        app.run()
        return
    import asyncio

    async def watched():
        asyncio.create_task(deadline(trial))
        await main()

    asyncio.run(watched())


def import_app():
    """import app; once more at once after a MemoryError. Compiled from source, the app
    and the SDK leave the heap in small pieces, and a module's compile can miss one
    contiguous block near the end (an ESP32-sized heap from .py: at some heap sizes, not
    at others); the names interned by the first try stay, so the second needs less."""
    try:
        import app
    except MemoryError:
        forget_app()
        print("fieldline: out of memory importing the app; once more at once")
        import app
    return app


def start(trial):
    """Import the app and run it; a version on trial that fails is rolled back. True when
    the app returned."""
    config_ready()  # before the app's import: a missing file costs no heap
    try:
        app = import_app()
    except Exception as exc:
        if trial is None:
            raise
        roll_back(trial, exc)  # then the old version is imported, in this boot
        forget_app()
        return False
    if trial is None:
        app.run()
        return True
    try:
        run_on_trial(app, trial)
    except Exception as exc:
        roll_back(trial, exc)
        reset_board()  # its tasks and sockets are live: start the old version clean
        raise
    return True


def boot():
    trial = update_step()
    attempt = 0
    while True:
        attempt += 1
        try:
            if start(trial):
                return
            trial = None  # rolled back: the old version next, at once
            attempt = 0
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
