"""Weekly rollups of the turnaround figures (`figure_rollups`), kept beside `request_figures`.

A dashboard range reads its whole weeks from here (one row per week, kind, console type,
figure and bucket) and only the part weeks at either end from `request_figures`, so the
figures of a 90-day range cost about the same at a million requests as at ten thousand.

A row counts the requests filed in a UTC week (Monday to Sunday), of a kind and console type,
that have a figure in a bucket:

- `filed`: every request (bucket 0);
- `resolved`: the resolved ones (bucket 0);
- `sla_met`: those judged against the SLA, in bucket 1 when met and 0 when not;
- each duration column (`resolution_seconds`, ...): its values by duration bucket
  (`service.domain.duration_bucket`).

The projection adds each change of a request's figures as it writes them (`change`); writers
of history in bulk rebuild the rollups from `request_figures` afterwards (`rebuild`). A count
that drops to zero stays as a row of zero. Agents are not rolled up: a dozen agents times
every bucket would outgrow what the rollups save, so figures for one agent or per agent read
`request_figures` (one agent's share of a range is small).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    Select,
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

from service.domain import MEASURE_COLUMNS, bucket_column
from service.extensions import db
from service.models import FigureRollup, RequestFigures

Figures = RequestFigures
COUNTS = ("filed", "resolved", "sla_met")  # the figures that are counts, not durations
FIGURES = (*COUNTS, *MEASURE_COLUMNS)
# (figure, week, kind, console type, bucket): one rollup row's key
Key = tuple[str, date, Any, Any, int]
KEY_COLUMNS = ["figure", "week", "kind", "console_type", "bucket"]


def week_start(day: date) -> date:
    """The Monday starting a day's week."""
    return day - timedelta(days=day.weekday())


def week_of(column: Any, dialect: str) -> Any:
    """The Monday (UTC) starting the week of a timestamp column, in SQL (a date on PostgreSQL,
    ISO text on SQLite, as SQLite stores dates)."""
    # Constants are inlined, not bound: PostgreSQL matches a GROUP BY expression to the
    # selected one textually, and two bound parameters never look the same.
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return cast(func.date_trunc(literal_column("'week'"), utc), Date)
    return func.date(column, literal_column("'weekday 0'"), literal_column("'-6 days'"))


def tallies(figures: RequestFigures) -> Counter[Key]:
    """The rollup rows one request's figures count in, each once."""
    week = week_start(figures.created_at.astimezone(UTC).date())
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
        (figure, week, figures.kind, figures.console_type, bucket) for figure, bucket in found
    )


def change(before: Mapping[Key, int], after: Mapping[Key, int]) -> None:
    """Move the rollups from one state of a request's figures (`tallies`, empty for a new
    request) to the next, in the current transaction."""
    delta = Counter(after)
    delta.subtract(before)
    rows = [
        {"figure": f, "week": w, "kind": k, "console_type": c, "bucket": b, "count": n}
        for (f, w, k, c, b), n in delta.items()
        if n
    ]
    if not rows:
        return
    dialect = db.session.get_bind().dialect.name
    upsert: Any = (postgresql if dialect == "postgresql" else sqlite).insert(FigureRollup)
    upsert = upsert.on_conflict_do_update(
        index_elements=KEY_COLUMNS,
        set_={"count": FigureRollup.count + upsert.excluded["count"]},
    )
    db.session.execute(upsert, rows)


def counted(dialect: str) -> Select[Any]:
    """Every rollup row as `request_figures` gives it now: (figure, week, kind, console type,
    bucket, count)."""
    week = week_of(Figures.created_at, dialect)
    parts = [
        _count("filed", week, literal(0, Integer), []),
        _count("resolved", week, literal(0, Integer), [Figures.resolved_at.is_not(None)]),
        _count("sla_met", week, cast(Figures.sla_met, Integer), [Figures.sla_met.is_not(None)]),
    ]
    for column in MEASURE_COLUMNS:
        bucket: Any = getattr(Figures, bucket_column(column))
        parts.append(_count(column, week, bucket, [bucket.is_not(None)]))
    return union_all(*parts)  # type: ignore[return-value]


def _count(figure: str, week: Any, bucket: Any, where: list[Any]) -> Select[Any]:
    return (
        select(
            literal(figure).label("figure"),
            week.label("week"),
            Figures.kind,
            Figures.console_type,
            bucket.label("bucket"),
            func.count().label("count"),
        )
        .where(*where)
        .group_by(week, Figures.kind, Figures.console_type, bucket)
    )


def rebuild(conn: Connection) -> None:
    """Recount every rollup from `request_figures`, in the connection's transaction (after
    figures were written in bulk, not through `change`)."""
    conn.execute(delete(FigureRollup))
    columns = [*KEY_COLUMNS, "count"]
    conn.execute(insert(FigureRollup).from_select(columns, counted(conn.dialect.name)))
