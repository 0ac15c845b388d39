"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlalchemy import text

from domain.durations import (
    DURATION_BUCKETS,
    MEASURE_COLUMNS,
    bucket_column,
    duration_bucket,
    duration_bucket_sql,
)
from service.extensions import db


def test_migrated_schema_matches_the_models(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True},
        )
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_every_duration_is_indexed_by_its_bucket(app: Flask) -> None:
    """The indexes the percentiles count and rank from, on both databases: each duration's
    bucket column first, then the filing time, partial on durations that exist."""
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'request_figures'"
        else:
            query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'request_figures'"
        rows = db.session.execute(text(query)).all()
    indexes = {name: " ".join(sql.split()) for name, sql in rows if name.endswith("_bucket")}
    assert len(indexes) == len(MEASURE_COLUMNS)
    for column in MEASURE_COLUMNS:
        bucket = bucket_column(column)
        sql = indexes[f"ix_request_figures_{bucket}"]
        assert f"({bucket}, created_at, {column}," in sql
        assert sql.replace("(", "").replace(")", "").endswith(f"WHERE {bucket} IS NOT NULL")


def test_the_migrations_bucket_sql_agrees_with_the_models_buckets(app: Flask) -> None:
    """Rows stored before the bucket columns get them from `duration_bucket_sql` (migration
    0004); rows written since, from `duration_bucket`. Both number every value alike, edges
    included, on this database."""
    edges = [float(b) for b in DURATION_BUCKETS]
    values = [0.0, -1.0, 0.25, 1e9, *edges, *(e - 0.001 for e in edges), *(e + 0.5 for e in edges)]
    listed = ", ".join(f"({v!r})" for v in values)
    query = f"WITH t(v) AS (VALUES {listed}) SELECT v, {duration_bucket_sql('v')} FROM t"
    with app.app_context():
        rows = db.session.execute(text(query)).all()
    assert len(rows) == len(values)
    assert [(v, duration_bucket(v)) for v in values] == [(float(v), b) for v, b in rows]
