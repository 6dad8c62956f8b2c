"""A virtual device's board: its files (the installed SDK and firmware app, as
`provision flash` puts them on a board, with version.json) under <state dir>/board, and
the board's own OTA loader (device/loader.py, loaded by path: the same code a board runs
from main.py) to switch to a staged update and roll it back.

What main.py does on a board at the boot after an update, a virtual device does at its
virtual reboot: the loader switches, then the new app is imported in a child Python
(the app and SDK of the bundle, from the board's folder, once per distinct set of code
files in a run; a bundle of .mpy cannot be imported by CPython, so virtual devices take
bundles built with `--mpy none`). An app that raises at import is rolled back at once,
with the exception as the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sys
import weakref
from functools import cache
from pathlib import Path

from fieldline_provision.board_files import device_app_dir, firmware_files

TRIAL_S = 120.0  # a virtual device is online within seconds: 2 minutes is generous
IMPORT_CHECK_S = 30.0
IMPORTS_AT_ONCE = 4  # child Pythons importing an app (a rollout reboots hundreds)
_imports: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per event loop
_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> {digest: task}
TIMED_OUT = "the app did not import within"


@cache
def loader():
    """device/loader.py as a module (it is not a package: a board has it at its root)."""
    path = device_app_dir() / "loader.py"
    spec = importlib.util.spec_from_file_location("fieldline_board_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class VirtualBoard:
    def __init__(self, data_dir: Path, trial_s: float = TRIAL_S) -> None:
        self.data_dir = str(data_dir)
        self.path = data_dir / "board"
        self.root = str(self.path) + "/"  # the Updater's and loader's path prefix
        self.trial_s = trial_s
        self.on_trial = False
        if not (self.path / "version.json").is_file():
            self._flash()

    def _flash(self) -> None:
        """What provision flash writes, once: the SDK, the app, version.json."""
        for board_file in firmware_files():
            target = self.path / board_file.board_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(board_file.data)

    async def boot(self) -> None:
        """The loader's step at boot; a version on trial must import, or is rolled back."""
        state = loader().boot(self.data_dir, self.root)
        self.on_trial = state == "trial"
        if not self.on_trial:
            return
        error = await self._import_error()
        if error:
            loader().roll_back(self.data_dir, error, self.root)
            self.on_trial = False

    async def _import_error(self) -> str | None:
        """None when the board's app imports in a fresh Python, else the last line of its
        error (what main.py would record on a board). Once per distinct set of code
        files in a run: the same bytes import the same way, and a rollout reboots
        hundreds of boards onto one bundle."""
        checks = _checked.setdefault(asyncio.get_running_loop(), {})
        key = self._code_digest()
        if key not in checks:
            checks[key] = asyncio.ensure_future(self._import_in_child())
        error = await asyncio.shield(checks[key])
        if error and error.startswith(TIMED_OUT):
            checks.pop(key, None)  # a slow machine, not the code: the next one tries again
        return error

    def _code_digest(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.path.rglob("*")):
            if path.suffix in (".py", ".mpy") and path.is_file():
                digest.update(str(path.relative_to(self.path)).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    async def _import_in_child(self) -> str | None:
        code = "import sys; sys.path[:0] = ['lib', '.']; import app"
        loop = asyncio.get_running_loop()
        limit = _imports.setdefault(loop, asyncio.Semaphore(IMPORTS_AT_ONCE))
        async with limit:
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", code, cwd=self.path,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                _, stderr = await asyncio.wait_for(child.communicate(), IMPORT_CHECK_S)
            except TimeoutError:
                child.kill()
                return f"{TIMED_OUT} {IMPORT_CHECK_S:.0f} s"
        if child.returncode == 0:
            return None
        lines = stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"the import exited with {child.returncode}"

    def roll_back_if_on_trial(self, reason: str) -> bool:
        state = loader().read_state(self.data_dir) or {}
        if state.get("state") != "trial":
            return False
        loader().roll_back(self.data_dir, reason, self.root)
        return True
