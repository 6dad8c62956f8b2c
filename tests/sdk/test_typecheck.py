"""sdk/ and device/ type-check against the MicroPython ESP32 stubs, so a call the board
does not have (time.monotonic, ssl.create_default_context, ...) fails here, on the host.

Host-only branches (guarded by port.MICROPYTHON at run time) carry explicit
`# type: ignore[attr-defined]` comments: each one is a deliberate, reviewed exception."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stub_root() -> Path:
    for entry in sys.path:
        if (Path(entry) / "esp32.pyi").exists() and (Path(entry) / "stdlib" / "VERSIONS").exists():
            return Path(entry)
    raise AssertionError(
        "micropython-esp32-stubs are not installed: pip install -e '.[test]' brings them"
    )


def _prepare(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    site = _stub_root()
    record = next(site.glob("micropython_esp32_stubs-*.dist-info")) / "RECORD"
    board = tmp_path / "board_stubs"
    modules = []
    for line in record.read_text().splitlines():
        name = line.split(",", 1)[0]
        if name.endswith(".pyi"):
            target = board / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(site / name, target)
            modules.append(name[:-4].replace("/__init__", "").replace("/", "."))
    shutil.copytree(site / "_mpy_shed", board / "_mpy_shed")
    modules.append("_mpy_shed.*")
    typeshed = tmp_path / "typeshed"
    shutil.copytree(site / "stdlib", typeshed / "stdlib")
    shutil.copytree(site / "stubs", typeshed / "stubs")
    return board, typeshed, modules


def test_sdk_and_device_typecheck_against_esp32_stubs(tmp_path):
    board, typeshed, stub_modules = _prepare(tmp_path)
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\ncheck_untyped_defs = True\nexplicit_package_bases = True\n"
        f"mypy_path = {board}:{ROOT / 'sdk'}:{ROOT / 'device'}\n"
        # The stubs themselves have a few inconsistencies; we check our code, not them.
        f"\n[mypy-{','.join(stub_modules)}]\nignore_errors = True\n"
    )
    files = sorted(str(p) for p in (ROOT / "sdk" / "fieldline").glob("*.py"))
    files += sorted(str(p) for p in (ROOT / "device").glob("*.py"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--no-site-packages",
            "--custom-typeshed-dir",
            str(typeshed),
            "--cache-dir",
            str(tmp_path / "cache"),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, "mypy against the ESP32 stubs:\n" + result.stdout + result.stderr
