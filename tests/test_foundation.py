"""The project's own wiring: packaging list, settings, CLI help."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fieldline_backend.common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_dir_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    listed = set(config["packages"])
    found = set()
    for name, directory in mapping.items():
        base = ROOT / directory
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            found.add(".".join((name, *relative)))
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"
    assert listed - found == set(), "these listed packages have no __init__.py"


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
