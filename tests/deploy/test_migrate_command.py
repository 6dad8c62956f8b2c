"""`fieldline migrate`, the compose file's one-shot container: brings a fresh PostgreSQL
database to every service's head, is idempotent, and says what to do when the database
cannot be reached."""

from __future__ import annotations

import os
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, inspect

from tests.support.servers import free_port

pytestmark = pytest.mark.real


def fieldline_migrate(database_url: str, tmp_path) -> subprocess.CompletedProcess:
    command = shutil.which("fieldline")
    assert command, "the fieldline command is not installed; run scripts/bootstrap.sh test"
    env = {
        **os.environ,
        "FIELDLINE_DATABASE_URL": database_url,
        "FIELDLINE_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [command, "migrate"], capture_output=True, text=True, env=env, timeout=120
    )


def test_migrate_brings_a_fresh_database_to_head_and_is_idempotent(pg_url, tmp_path):
    first = fieldline_migrate(pg_url, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "database schema is up to date" in first.stdout
    assert f"{urlsplit(pg_url).username}@" not in first.stdout, "credentials printed"
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "mqtt_accounts", "devices"} <= tables, sorted(tables)
    again = fieldline_migrate(pg_url, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]


def test_migrate_names_the_database_it_cannot_reach(tmp_path):
    unreachable = f"postgresql://fieldline:secret-pw@127.0.0.1:{free_port()}/fieldline"
    result = fieldline_migrate(unreachable, tmp_path)
    assert result.returncode == 2
    assert "migration failed" in result.stderr and "FIELDLINE_DATABASE_URL" in result.stderr
    assert "secret-pw" not in result.stdout + result.stderr
