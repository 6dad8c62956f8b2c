"""Which files go on a board, where they come from, and uploading only those that differ.

Sources, the same from a checkout and from an installed wheel:
* the SDK is the installed `fieldline` package (pyproject maps sdk/fieldline to it), found
  through importlib; its files go to `lib/fieldline/` on the board;
* the firmware app is the repository's `device/` folder in a checkout; an installed wheel
  carries it as `fieldline_provision/device_app/` (package data, see docs/provisioning.md);
  its files go to the board's root.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from fieldline_provision.board_link import BoardLink
from fieldline_provision.errors import PartialUpload, ProvisionError

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DEVICE_DIR = PACKAGE_DIR.parent / "device"
WHEEL_DEVICE_DIR = PACKAGE_DIR / "device_app"
BOARD_FILE_SUFFIXES = (".py", ".mpy")
# Written by `provision` itself, never copied from a folder (it holds the credentials).
CONFIG_PATH = "config.json"
# The version the board runs and reports (docs/ota.md); an OTA bundle replaces it.
VERSION_PATH = "version.json"


@dataclass(frozen=True)
class BoardFile:
    board_path: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sdk_dir() -> Path:
    spec = importlib.util.find_spec("fieldline")
    if spec is None or not spec.submodule_search_locations:
        raise ProvisionError(
            "the Fieldline device SDK (package `fieldline`) is not installed: "
            "reinstall Fieldline (pip install fieldline)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def device_app_dir() -> Path:
    for candidate in (CHECKOUT_DEVICE_DIR, WHEEL_DEVICE_DIR):
        if (candidate / "main.py").is_file():
            return candidate
    raise ProvisionError(
        f"the firmware app (main.py) is in neither {CHECKOUT_DEVICE_DIR} nor "
        f"{WHEEL_DEVICE_DIR}: reinstall Fieldline or run from a complete checkout"
    )


def _files_under(folder: Path, board_prefix: str) -> list[BoardFile]:
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.suffix not in BOARD_FILE_SUFFIXES:
            continue
        if any(part in ("__pycache__", "tests") for part in relative.parts):
            continue
        found.append(BoardFile(board_prefix + relative.as_posix(), path.read_bytes()))
    return found


def installed_version() -> str:
    """The installed Fieldline's version: what a flashed board runs."""
    try:
        return metadata.version("fieldline")
    except metadata.PackageNotFoundError:
        return "0"


def version_file(version: str | None = None) -> BoardFile:
    return BoardFile(VERSION_PATH, json.dumps({"version": version or installed_version()}).encode())


def firmware_files(sdk: Path | None = None, app: Path | None = None) -> list[BoardFile]:
    """The SDK under lib/fieldline/ and the app at the root, in upload order (SDK first:
    the app imports it), then version.json."""
    sdk = sdk or sdk_dir()
    app = app or device_app_dir()
    files = _files_under(sdk, "lib/fieldline/") + _files_under(app, "")
    return [f for f in files if f.board_path != CONFIG_PATH] + [version_file()]


@dataclass
class UploadReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0


ProgressLine = Callable[[str], None]


def upload_changed(
    link: BoardLink, files: list[BoardFile], say: ProgressLine = lambda line: None
) -> UploadReport:
    """Upload the files whose sha256 on the board differs (or that are missing)."""
    report = UploadReport()
    on_board = link.file_hashes([f.board_path for f in files])
    changed = [f for f in files if on_board.get(f.board_path) != f.sha256]
    report.unchanged = [f.board_path for f in files if f not in changed]
    total = sum(len(f.data) for f in changed)
    say(
        f"{len(changed)} of {len(files)} files differ on the board "
        f"({total} bytes to upload, {len(report.unchanged)} unchanged)"
    )
    for board_file in changed:
        before = report.bytes_uploaded

        def progress(sent: int, size: int, _name=board_file.board_path, _before=before):
            # One line per file, and per chunk only for big files: readable in a log.
            if sent == size or sent % (8 * 1024) == 0:
                percent = 100 * (_before + sent) // total if total else 100
                say(f"  [{percent:3d}%] {_name} ({sent}/{size} bytes)")

        try:
            link.put_file(board_file.board_path, board_file.data, progress)
        except ProvisionError as error:
            if not report.uploaded:
                raise
            raise PartialUpload(
                f"{error} -- the board now has {len(report.uploaded)} of {len(changed)} "
                f"updated files (up to {report.uploaded[-1]}); each file is either old or "
                "new, never cut; run the same command again to finish"
            ) from None
        report.uploaded.append(board_file.board_path)
        report.bytes_uploaded += len(board_file.data)
    return report
