"""The project's own wiring: packaging list, settings, CLI help."""

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from fieldline_backend.common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _importable_dirs(name: str, base: Path) -> set[str]:
    """Every directory Python could import under `base`: code and data alike."""
    found = set()
    for directory, subdirs, _files in os.walk(base, followlinks=True):
        subdirs[:] = [d for d in subdirs if d.isidentifier()]  # skips __pycache__ too
        if d := Path(directory).relative_to(base).parts:
            found.add(".".join((name, *d)))
        else:
            found.add(name)
    return {dotted for dotted in found if "__pycache__" not in dotted}


def test_every_importable_dir_is_listed_in_pyproject():
    # setuptools warns (one screen per directory) about any it has to guess.
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for name, directory in config["package-dir"].items():
        found |= _importable_dirs(name, ROOT / directory)
    listed = set(config["packages"])
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"
    assert listed - found == set(), "these listed packages do not exist"


def test_the_wheel_builds_without_a_warning_and_ships_the_data(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    output = build.stdout + build.stderr
    assert "Warning" not in output and "!!" not in output, output
    (wheel,) = tmp_path.glob("fieldline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (
        "fieldline_provision/device_app/main.py",
        "fieldline_backend/console/templates/device.html",
        "fieldline_backend/console/static/console.js",
        "fieldline_backend/migrations/script.py.mako",
        "fieldline/__init__.py",
    ):
        assert shipped in names


def test_unset_urls_mean_embedded_defaults(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'fieldline.db'}"
    assert settings.embedded_broker
    assert settings.service_url("devices") == "http://127.0.0.1:8000"


def test_postgres_urls_use_psycopg3(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="postgresql://u@h/db")
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h/db"


def test_placeholder_internal_token_is_refused(tmp_path):
    with pytest.raises(ValueError, match="placeholder"):
        _ = Settings(data_dir=tmp_path, internal_token="changeme").effective_internal_token


def test_embedded_internal_token_is_stable_and_private(tmp_path):
    first = Settings(data_dir=tmp_path).effective_internal_token
    assert first == Settings(data_dir=tmp_path).effective_internal_token
    assert len(first) >= 32
    assert (tmp_path / "secrets" / "internal_token").stat().st_mode & 0o077 == 0


def test_toml_file_is_read_and_env_wins(tmp_path, monkeypatch):
    config = tmp_path / "fieldline.toml"
    config.write_text('http_port = 9001\nmail_from = "ops@example.com"\n')
    monkeypatch.setenv("FIELDLINE_CONFIG", str(config))
    monkeypatch.setenv("FIELDLINE_HTTP_PORT", "9002")
    settings = Settings(data_dir=tmp_path)
    assert settings.mail_from == "ops@example.com"
    assert settings.http_port == 9002


@pytest.mark.parametrize("argv", [["--help"], ["up", "--help"], ["users", "create", "--help"]])
def test_cli_help_has_examples(argv):
    out = subprocess.run(
        [sys.executable, "-m", "fieldline_backend.cli", *argv], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "example" in out.stdout


def test_bootstrap_says_nothing_and_skips_pip_when_the_install_is_current():
    script = [str(ROOT / "scripts" / "bootstrap.sh"), "test"]
    first = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert len(first.stderr.splitlines()) <= 1  # the one "installing" line, if it had to

    again = subprocess.run(script, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    plain = subprocess.run(script[:1], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, "", "")
