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
from flask_migrate import downgrade, upgrade
from sqlalchemy import column as sql_column
from sqlalchemy import insert, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

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
from service import create_app
from service.config import is_sqlite
from service.extensions import MIGRATIONS_DIR, db
from service.metrics import rollups
from service.models import (
    AgentRollup,
    Console,
    FigureRollup,
    Instance,
    Request,
    RequestFigures,
    Task,
    TimelineEvent,
    utcnow,
)
from tests.conftest import Factory


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
    db.session.add_all([*consoles, instance])
    db.session.flush()
    # Users with the columns every revision has: today's model has columns added since.
    columns = ("id", "username", "display_name", "password_hash", "role", "active", "created_at")
    users = table("users", *map(sql_column, columns))
    requester_id, *agent_ids = (
        db.session.execute(
            insert(users)
            .values(
                username=name,
                display_name=name,
                password_hash="-",
                role=role.value,
                active=True,
                created_at=utcnow(),
            )
            .returning(users.c.id)
        ).scalar_one()
        for name, role in (
            ("pacct", Role.PARTNER),
            ("agent1", Role.AGENT),
            ("agent2", Role.AGENT),
            ("agent3", Role.AGENT),
        )
    )
    durations = [None, 0.0, 0.4, *map(float, DURATION_BUCKETS), 1e9]
    numbers = []
    for i in range(count):
        created = (
            EDGES[i] if i < len(EDGES) else MONDAY + timedelta(seconds=rng.uniform(0, 70 * 86400))
        )
        console = rng.choice(consoles)
        request = _request(console, instance, requester_id, created)
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
                agent_id=rng.choice([None, *agent_ids]),
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
    `service.metrics.rollups.rebuild` gives."""
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


# The SLA state column.


def test_the_database_refuses_what_is_not_an_sla_state(app: Flask, make: Factory) -> None:
    """`requests.sla_state` holds an SlaState, read back as one; anything else is refused by
    the database's own CHECK, as for the other enum columns."""
    make.console("ACCT-01")
    make.instance("ACME-US")
    requester = make.user("pacct", "partner", console="ACCT-01")
    with app.app_context():
        request = _request(
            db.session.execute(select(Console)).scalar_one(),
            db.session.execute(select(Instance)).scalar_one(),
            requester,
            utcnow(),
            sla_state=SlaState.AT_RISK,
        )
        db.session.add(request)
        db.session.commit()
        db.session.expire_all()
        assert db.session.get_one(Request, request.id).sla_state is SlaState.AT_RISK
        with pytest.raises(IntegrityError, match="ck_requests_sla_state"):
            db.session.execute(
                text("UPDATE requests SET sla_state = 'late' WHERE id = :id"), {"id": request.id}
            )
        db.session.rollback()


def _requests_schema() -> tuple[dict[str, str], set[str | None], str]:
    """What `requests` is made of, as the database reports it: its indexes (name: definition),
    the names of its CHECK constraints and the type of `sla_state`."""
    if db.engine.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests'"
    else:
        query = (
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'requests' AND schemaname = current_schema()"
        )
    with db.engine.connect() as conn:
        indexes = {name: sql for name, sql in conn.execute(text(query))}
        inspector = inspect(conn)
        checks = {check["name"] for check in inspector.get_check_constraints("requests")}
        (sla_state,) = (
            str(column["type"])
            for column in inspector.get_columns("requests")
            if column["name"] == "sla_state"
        )
    return indexes, checks, sla_state


def _stored() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `requests` and of the tables that refer to it, as stored."""
    tables = ("requests", "request_figures", "tasks", "timeline_events")
    with db.engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in tables
        }


def _statistics() -> list[tuple[Any, ...]]:
    """SQLite's planner statistics of `requests` (none kept on PostgreSQL's side here)."""
    if db.engine.dialect.name != "sqlite":
        return []
    with db.engine.connect() as conn:
        return sorted(
            tuple(row)
            for row in conn.execute(
                text("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl = 'requests'")
            )
        )


def test_the_sla_state_migration_keeps_every_row_index_and_id(migrating_app: Flask) -> None:
    """0008 checks `sla_state` (on SQLite by re-creating `requests`): the rows of `requests`
    and of every table that refers to it, each index as it was (the open requests' one still
    partial), the planner's statistics and the IDs handed out so far all survive it, up and
    down."""
    with migrating_app.app_context():
        upgrade(revision="0007")
        numbers = _store_history(20)
        with db.engine.begin() as conn:
            # The newest request is gone, but its ID is not to be handed out again.
            conn.execute(text("DELETE FROM requests WHERE id = :id"), {"id": numbers[-1]})
            conn.execute(
                text(
                    "UPDATE requests SET sla_state = 'breached', open_key = 'open' WHERE id = :id"
                ),
                {"id": numbers[0]},
            )
            if db.engine.dialect.name == "sqlite":
                conn.execute(text("ANALYZE"))
        indexes, checks, sla_state = _requests_schema()
        rows, statistics = _stored(), _statistics()
        assert len(rows["requests"]) == len(rows["tasks"]) == len(numbers) - 1
        assert set(indexes) >= {name for name, *_ in migration("0008").INDEXES}
        partial = indexes["ix_requests_open"].replace("(", "").replace(")", "")
        assert partial.endswith("WHERE open_key IS NOT NULL")
        assert (checks, sla_state) == (
            {"ck_requests_request_kind", "ck_requests_request_status"},
            "VARCHAR(16)",
        )

        upgrade(revision="0008")
        assert _requests_schema() == (indexes, {*checks, "ck_requests_sla_state"}, "VARCHAR(32)")
        assert _stored() == rows
        assert _statistics() == statistics

        downgrade(revision="0007")
        assert _requests_schema() == (indexes, checks, sla_state)
        assert _stored() == rows
        assert _statistics() == statistics

        upgrade()
        with db.engine.connect() as conn:
            console, instance, requester = (
                conn.execute(text(f"SELECT min(id) FROM {table}")).scalar()
                for table in ("consoles", "instances", "users")
            )
        request = Request(
            kind=RequestKind.ESTABLISH_LINK,
            console_id=console,
            instance_id=instance,
            requester_id=requester,
            reason="after the migration",
            status=RequestStatus.SUBMITTED,
            steps=[],
        )
        db.session.add(request)
        db.session.commit()
        assert request.id == numbers[-1] + 1
        assert request.sla_state is SlaState.OK


def _add_users(emails: dict[str, str | None]) -> None:
    with db.engine.begin() as conn:
        for username, email in emails.items():
            conn.execute(
                text(
                    "INSERT INTO users (username, display_name, email, password_hash, role, "
                    "active, created_at) VALUES (:u, :u, :e, 'x', 'agent', :t, :now)"
                ),
                {"u": username, "e": email, "t": True, "now": utcnow()},
            )


def _emails() -> dict[str, str | None]:
    with db.engine.connect() as conn:
        return dict(conn.execute(text("SELECT username, email FROM users")).all())  # type: ignore[arg-type]


def test_the_second_factor_migration_keeps_one_user_per_email_address(
    migrating_app: Flask, capfd: pytest.CaptureFixture[str]
) -> None:
    """0010 stores addresses trimmed and lower-case (blank ones as NULL) under a unique index;
    when users already share an address it stops, naming it, and changes nothing."""
    with migrating_app.app_context():
        upgrade(revision="0008")
        _add_users({"pat": " Pat@Example.TEST ", "sam": "", "kim": None, "lee": "lee@x.test"})
        _add_users({"pat2": "pat@example.test"})
        with pytest.raises(SystemExit):  # Flask-Migrate's answer to a failed migration
            upgrade(revision="0010")
        assert "pat@example.test (2 users)" in capfd.readouterr().err
        db.session.rollback()
        assert _emails()["pat"] == " Pat@Example.TEST "
        assert "second_factors" not in inspect(db.engine).get_table_names()

        with db.engine.begin() as conn:
            conn.execute(text("UPDATE users SET email = 'pat2@x.test' WHERE username = 'pat2'"))
        upgrade(revision="0010")
        assert _emails() == {
            "pat": "pat@example.test",
            "sam": None,
            "kim": None,
            "lee": "lee@x.test",
            "pat2": "pat2@x.test",
        }
        with pytest.raises(IntegrityError):
            _add_users({"copy": "lee@x.test"})
        downgrade(revision="0008")
        _add_users({"copy": "lee@x.test"})  # no longer held unique
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM users WHERE username = 'copy'"))
        upgrade()
        assert "second_factors" in inspect(db.engine).get_table_names()


def test_the_user_admin_migration_starts_every_user_at_version_1(migrating_app: Flask) -> None:
    """0012 gives the users already stored version 1 (the API's first ETag) and adds the
    password links; down again, the users are as they were."""
    with migrating_app.app_context():
        upgrade(revision="0011")
        _add_users({"pat": "pat@example.test", "sam": None})
        upgrade(revision="0012")
        with db.engine.connect() as conn:
            versions = dict(conn.execute(text("SELECT username, version FROM users")).all())  # type: ignore[arg-type]
        assert versions == {"pat": 1, "sam": 1}
        assert "password_links" in inspect(db.engine).get_table_names()
        downgrade(revision="0011")
        assert "password_links" not in inspect(db.engine).get_table_names()
        assert _emails() == {"pat": "pat@example.test", "sam": None}
        upgrade()
