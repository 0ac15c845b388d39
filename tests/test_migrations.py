"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import text

from service.domain import MEASURE_COLUMNS, duration_bucket_sql
from service.extensions import autogenerate_filter, db


# SQLAlchemy cannot reflect SQLite's expression indexes (the duration buckets); Alembic then
# leaves them out of the comparison, and the test below covers them instead.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
def test_migrated_schema_matches_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": autogenerate_filter(connection.dialect.name),
            },
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_sqlite_indexes_every_duration_by_its_bucket(app: Flask) -> None:
    """On SQLite, the expression indexes the percentiles need, with the models' SQL; on
    PostgreSQL (percentile_cont) none of them."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'request_figures'"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'request_figures'"
        rows = db.session.execute(text(query)).all()
        sqlite = db.engine.dialect.name == "sqlite"
    indexes = {name: sql for name, sql in rows if name.endswith("_bucket")}
    assert len(indexes) == (len(MEASURE_COLUMNS) if sqlite else 0)
    for column in MEASURE_COLUMNS if sqlite else ():
        name = f"ix_request_figures_{column.removesuffix('_seconds')}_bucket"
        assert duration_bucket_sql(column) in indexes[name]
