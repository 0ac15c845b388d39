"""Weekly rollups of the turnaround figures, kept beside `request_figures`.

A dashboard range reads its whole weeks from here and only the part weeks at either end from
`request_figures`, so the figures of a 90-day range cost about the same at a million requests
as at ten thousand.

A rollup row counts the requests filed in a UTC week (Monday to Sunday) that have a figure in
a bucket:

- `filed`: every request (bucket 0);
- `resolved`: the resolved ones (bucket 0);
- `sla_met`: those judged against the SLA, in bucket 1 when met and 0 when not;
- each duration column (`resolution_seconds`, ...): its values by duration bucket
  (`domain.durations.duration_bucket`).

`figure_rollups` splits them by kind and console type, `agent_rollups` by agent (the one who
first took the request up, 0 for none): the figures of a kind, a console type or both read
the first, those per agent or of one agent the second. A range filtered by an agent and by a
kind or console type too reads `request_figures` alone (one agent's share of a range is
small).

The projection adds each change of a request's figures as it writes them (`change`); writers
of history in bulk rebuild the rollups from `request_figures` afterwards (`rebuild`). A count
that drops to zero stays as a row of zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    Integer,
    Select,
    SQLColumnExpression,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstrumentedAttribute

from domain.durations import MEASURE_COLUMNS, bucket_column
from domain.vocabulary import ConsoleType, RequestKind
from service.extensions import db
from service.models import AgentRollup, FigureRollup, RequestFigures

COUNTS = ("filed", "resolved", "sla_met")  # the figures that are counts, not durations
NO_AGENT = 0  # the agent of requests nobody took up yet
# A request's place in the rollups: (figure, week, kind, console type, agent, bucket)
Tally = tuple[str, date, RequestKind, ConsoleType, int, int]
RollupTable = type[FigureRollup] | type[AgentRollup]


def week_start(day: date) -> date:
    """The Monday starting a day's week."""
    return day - timedelta(days=day.weekday())


def week_of(column: InstrumentedAttribute[datetime], dialect: str) -> ColumnElement[date | str]:
    """The Monday (UTC) starting the week of a timestamp column, in SQL (a date on PostgreSQL,
    ISO text on SQLite, as SQLite stores dates)."""
    # Constants are inlined, not bound: PostgreSQL matches a GROUP BY expression to the
    # selected one textually, and two bound parameters never look the same.
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return cast(func.date_trunc(literal_column("'week'"), utc), Date)
    return func.date(column, literal_column("'weekday 0'"), literal_column("'-6 days'"))


def tallies(figures: RequestFigures) -> Counter[Tally]:
    """The rollup rows one request's figures count in, each once."""
    week = week_start(figures.created_at.astimezone(UTC).date())
    agent = figures.agent_id or NO_AGENT
    found: list[tuple[str, int]] = [("filed", 0)]
    if figures.resolved_at is not None:
        found.append(("resolved", 0))
    if figures.sla_met is not None:
        found.append(("sla_met", int(figures.sla_met)))
    for column in MEASURE_COLUMNS:
        bucket = getattr(figures, bucket_column(column))
        if bucket is not None:
            found.append((column, bucket))
    return Counter(
        (figure, week, figures.kind, figures.console_type, agent, bucket)
        for figure, bucket in found
    )


def change(before: Mapping[Tally, int], after: Mapping[Tally, int]) -> None:
    """Move the rollups from one state of a request's figures (`tallies`, empty for a new
    request) to the next, in the current transaction."""
    delta = Counter(after)
    delta.subtract(before)
    by_kind: Counter[tuple[object, ...]] = Counter()
    by_agent: Counter[tuple[object, ...]] = Counter()
    for (figure, week, kind, console_type, agent, bucket), n in delta.items():
        by_kind[(figure, week, kind, console_type, bucket)] += n
        by_agent[(figure, week, agent, bucket)] += n
    _add(FigureRollup, ["figure", "week", "kind", "console_type", "bucket"], by_kind)
    _add(AgentRollup, ["figure", "week", "agent_id", "bucket"], by_agent)


def _add(table: RollupTable, key: list[str], delta: Counter[tuple[object, ...]]) -> None:
    # In key order, so two transactions touching the same rows lock them in the same order
    # (PostgreSQL) and cannot deadlock.
    changed = sorted((k, n) for k, n in delta.items() if n)
    rows = [{**dict(zip(key, k, strict=True)), "count": n} for k, n in changed]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    upsert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    statement = upsert.on_conflict_do_update(
        index_elements=key, set_={"count": table.count + upsert.excluded["count"]}
    )
    db.session.execute(statement, rows)


def counted(table: RollupTable, dialect: str) -> CompoundSelect:
    """Every row of a rollup table as `request_figures` gives it now, in the table's column
    order (the key, then the count)."""
    week = week_of(RequestFigures.created_at, dialect)
    if table is AgentRollup:
        # Inlined, not bound: PostgreSQL matches the GROUP BY expression to this one textually.
        agent = func.coalesce(RequestFigures.agent_id, literal_column(str(NO_AGENT)))
        split: list[SQLColumnExpression[object]] = [agent.label("agent_id")]
    else:
        split = [RequestFigures.kind, RequestFigures.console_type]
    parts = [
        _count("filed", week, split, literal(0, Integer), []),
        _count(
            "resolved", week, split, literal(0, Integer), [RequestFigures.resolved_at.is_not(None)]
        ),
        _count(
            "sla_met",
            week,
            split,
            cast(RequestFigures.sla_met, Integer),
            [RequestFigures.sla_met.is_not(None)],
        ),
    ]
    for column in MEASURE_COLUMNS:
        bucket: InstrumentedAttribute[int | None] = getattr(RequestFigures, bucket_column(column))
        parts.append(_count(column, week, split, bucket, [bucket.is_not(None)]))
    return union_all(*parts)


def _count(
    figure: str,
    week: ColumnElement[date | str],
    split: list[SQLColumnExpression[object]],
    bucket: SQLColumnExpression[int | None],
    where: list[ColumnElement[bool]],
) -> Select[str, date | str, *tuple[object, ...]]:
    return (
        select(
            literal(figure).label("figure"),
            week.label("week"),
            *split,
            bucket.label("bucket"),
            func.count().label("count"),
        )
        .where(*where)
        .group_by(week, *split, bucket)
    )


TABLES = (FigureRollup, AgentRollup)


def rebuild(conn: Connection) -> None:
    """Recount every rollup from `request_figures`, in the connection's transaction (after
    figures were written in bulk, not through `change`)."""
    for table in TABLES:
        conn.execute(delete(table))
        columns = [column.name for column in table.__table__.columns]
        conn.execute(insert(table).from_select(columns, counted(table, conn.dialect.name)))
