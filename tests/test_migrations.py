"""Every service's Alembic branch, upgraded on a fresh database, yields exactly the
tables the models declare (autogenerate finds nothing to add, drop or alter)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fieldline_backend.common.db import Base, Database
from fieldline_backend.common.models import import_all_models


def schema_differences(url: str) -> list:
    import_all_models()
    database = Database(url)
    try:
        database.migrate()
        with database.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            return compare_metadata(context, Base.metadata)
    finally:
        database.dispose()


def test_import_all_models_finds_the_registry_tables():
    import_all_models()
    for table in ("gateway_users", "gateway_tokens", "devices"):
        assert table in Base.metadata.tables


@pytest.mark.real
def test_migrations_match_models_on_postgresql(pg_url):
    url = pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
    assert schema_differences(url) == []


def test_migrations_match_models_on_sqlite(tmp_path):
    assert schema_differences(f"sqlite:///{tmp_path / 'fresh.db'}") == []
