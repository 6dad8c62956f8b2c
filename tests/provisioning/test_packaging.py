"""The SDK and the firmware app are found from a checkout and from an installed wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

from fieldline_provision import board_files

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_the_app_as_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "*.py" in config["package-data"]["fieldline_provision.device_app"]
    assert "fieldline_provision.device_app" in config["packages"]
    link = ROOT / "provisioning" / "device_app"
    assert link.is_symlink() and link.resolve() == (ROOT / "device").resolve()


def test_sdk_comes_from_the_installed_fieldline_package():
    assert board_files.sdk_dir().resolve() == (ROOT / "sdk" / "fieldline").resolve()


def test_without_a_checkout_the_packaged_app_is_used(monkeypatch, tmp_path):
    monkeypatch.setattr(board_files, "CHECKOUT_DEVICE_DIR", tmp_path / "no-checkout")
    assert board_files.device_app_dir() == board_files.WHEEL_DEVICE_DIR


def test_board_layout_sdk_under_lib_app_at_root_no_config():
    files = {f.board_path for f in board_files.firmware_files()}
    sdk = {p.name for p in (ROOT / "sdk" / "fieldline").glob("*.py")}
    app = {p.name for p in (ROOT / "device").glob("*.py")}
    assert {f"lib/fieldline/{name}" for name in sdk} <= files
    assert app <= files
    assert "config.json" not in files
    assert not any("__pycache__" in path or path.startswith("/") for path in files)
