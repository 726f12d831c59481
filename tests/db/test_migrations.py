"""The Alembic migrations build exactly the schema the row classes describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tessera.db.engine import make_engine
from tessera.db.migrate import upgrade
from tessera.db.rows import Base


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == [], f"schema drift; add a migration: {diff}"
    finally:
        engine.dispose()
