"""The Alembic migrations build exactly the schema the models describe, and carry the rows
already stored across every change."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from domain.durations import DURATION_BUCKETS, MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.sla import SlaState
from domain.vocabulary import (
    ConsoleType,
    RequestKind,
    RequestStatus,
    Role,
    TaskState,
    TaskType,
)
from service import create_app, rollups
from service.config import is_sqlite
from service.extensions import MIGRATIONS_DIR, db
from service.models import (
    AgentRollup,
    Console,
    FigureRollup,
    Instance,
    Request,
    RequestFigures,
    Task,
    TimelineEvent,
    User,
)


def migration(revision: str) -> ModuleType:
    """The module of one migration, as Alembic loads it."""
    script = ScriptDirectory(MIGRATIONS_DIR).get_revision(revision)
    assert script is not None
    return script.module


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
            query = (
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'request_figures' AND schemaname = current_schema()"
            )
        rows = db.session.execute(text(query)).all()
    indexes = {name: " ".join(sql.split()) for name, sql in rows if name.endswith("_bucket")}
    assert len(indexes) == len(MEASURE_COLUMNS)
    for column in MEASURE_COLUMNS:
        bucket = bucket_column(column)
        sql = indexes[f"ix_request_figures_{bucket}"]
        assert f"({bucket}, created_at, {column}," in sql
        assert sql.replace("(", "").replace(")", "").endswith(f"WHERE {bucket} IS NOT NULL")


@pytest.mark.parametrize("revision", ["0003", "0004"])
def test_the_migrations_bucket_sql_agrees_with_the_models_buckets(
    app: Flask, revision: str
) -> None:
    """Rows stored before the bucket columns get them from the bucket SQL frozen in migration
    0004 (0003 indexed the same expression); rows written since, from `duration_bucket`. Both
    number every value alike, edges included, on this database."""
    bucket_sql = migration(revision).duration_bucket_sql
    edges = [float(b) for b in DURATION_BUCKETS]
    values = [0.0, -1.0, 0.25, 1e9, *edges, *(e - 0.001 for e in edges), *(e + 0.5 for e in edges)]
    listed = ", ".join(f"({v!r})" for v in values)
    query = f"WITH t(v) AS (VALUES {listed}) SELECT v, {bucket_sql('v')} FROM t"
    with app.app_context():
        rows = db.session.execute(text(query)).all()
    assert len(rows) == len(values)
    assert [(v, duration_bucket(v)) for v in values] == [(float(v), b) for v, b in rows]


# Migrating a database that already holds rows: each test migrates a database of its own.


@pytest.fixture
def empty_database(base_config: dict[str, Any], tmp_path: Any) -> Iterator[str]:
    """The URL of an empty database of the test's own kind: a new SQLite file, or a schema of
    its own in the PostgreSQL test database (dropped afterwards)."""
    url = base_config["DATABASE_URL"]
    if is_sqlite(url):
        yield f"sqlite:///{tmp_path / 'migrating.sqlite3'}"
        return
    schema = f"migrating_{uuid.uuid4().hex[:12]}"
    admin = create_app(base_config)
    with admin.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            options = {"options": f"-csearch_path={schema}"}
            yield make_url(url).update_query_dict(options).render_as_string(hide_password=False)
        finally:
            with db.engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            db.engine.dispose()


@pytest.fixture
def migrating_app(base_config: dict[str, Any], empty_database: str) -> Iterator[Flask]:
    """An app on the empty database, which its test migrates step by step."""
    app = create_app({**base_config, "DATABASE_URL": empty_database})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _request(
    console: Console,
    instance: Instance,
    requester_id: int,
    created: datetime,
    sla_state: SlaState = SlaState.MET,
) -> Request:
    return Request(
        kind=RequestKind.ENABLE_ACCESS,
        console_id=console.id,
        instance_id=instance.id,
        requester_id=requester_id,
        reason="migrated",
        status=RequestStatus.COMPLETED,
        steps=["review"],
        created_at=created,
        updated_at=created,
        sla_state=sla_state,
    )


# Filing times on the edges of UTC weeks (a rollup counts by the Monday starting the week).
MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
EDGES = [
    MONDAY - timedelta(seconds=1),
    MONDAY - timedelta(microseconds=1),  # SQLite reads times to the millisecond: rounded up
    MONDAY,
    MONDAY + timedelta(days=7) - timedelta(seconds=1),
    MONDAY + timedelta(days=7),
]


def _store_history(count: int) -> list[int]:
    """`count` ended requests written by today's models (figures, a task and a timeline event
    each), in the app context's database whatever its revision; their IDs."""
    rng = random.Random(count)
    consoles = [
        Console(code=f"C-{type_.value}", name=type_.value, type=type_) for type_ in ConsoleType
    ]
    instance = Instance(code="ACME-US", name="Acme")
    users = [
        User(username=name, display_name=name, password_hash="-", role=role)
        for name, role in (
            ("pacct", Role.PARTNER),
            ("agent1", Role.AGENT),
            ("agent2", Role.AGENT),
            ("agent3", Role.AGENT),
        )
    ]
    db.session.add_all([*consoles, instance, *users])
    db.session.flush()
    requester, *agents = users
    durations = [None, 0.0, 0.4, *map(float, DURATION_BUCKETS), 1e9]
    numbers = []
    for i in range(count):
        created = (
            EDGES[i] if i < len(EDGES) else MONDAY + timedelta(seconds=rng.uniform(0, 70 * 86400))
        )
        console = rng.choice(consoles)
        request = _request(console, instance, requester.id, created)
        request.kind = rng.choice(list(RequestKind))
        db.session.add(request)
        db.session.flush()
        numbers.append(request.id)
        resolved = rng.random() < 0.7
        db.session.add(
            RequestFigures(
                request_id=request.id,
                created_at=created,
                resolved_at=created + timedelta(hours=rng.uniform(0, 400)) if resolved else None,
                kind=request.kind,
                console_type=console.type,
                outcome=RequestStatus.COMPLETED if resolved else None,
                agent_id=rng.choice([None, *(agent.id for agent in agents)]),
                sla_met=rng.choice([None, True, False]),
                **{
                    column: rng.choice([*durations, rng.uniform(0, 1e7)])
                    for column in MEASURE_COLUMNS
                },
            )
        )
        db.session.add(
            Task(
                request_id=request.id,
                key=1,
                type=TaskType.REVIEW,
                state=TaskState.DONE,
                created_at=created,
            )
        )
        db.session.add(
            TimelineEvent(request_id=request.id, seq=1, at=created, actor="pacct", action="filed")
        )
    db.session.commit()
    db.session.remove()
    return numbers


def _rollups() -> dict[str, list[tuple[Any, ...]]]:
    with db.engine.connect() as conn:
        return {
            model.__tablename__: sorted(
                tuple(row) for row in conn.execute(select(*model.__table__.columns))
            )
            for model in (FigureRollup, AgentRollup)
        }


def test_the_rollups_migration_counts_stored_figures_as_the_live_rebuild_does(
    migrating_app: Flask,
) -> None:
    """Migration 0006 counts the rollups of the figures already stored with SQL of its own,
    frozen; on figures written by today's code it gives exactly the rows that
    `service.rollups.rebuild` gives."""
    with migrating_app.app_context():
        upgrade(revision="0005")
        _store_history(300)
        upgrade(revision="0006")
        migrated = _rollups()
        with db.engine.begin() as conn:
            rollups.rebuild(conn)
        rebuilt = _rollups()
    assert migrated == rebuilt
    # Every figure, several weeks, and the week edges were counted.
    assert {row[0] for row in migrated["figure_rollups"]} == {
        *rollups.COUNTS,
        *MEASURE_COLUMNS,
    }
    weeks = {row[1] for row in migrated["agent_rollups"]}
    assert len(weeks) >= 10
    assert {MONDAY.date() + timedelta(days=7 * n) for n in (-1, 0, 1)} <= weeks
