"""The turnaround figures of a selection: per group, per day, the resolution histogram, per
agent, and the figures table as CSV.

Every figure is SQL over `request_figures` (one narrow row per request, kept by the
projection) and its weekly rollups, counted and ranked by `service.metrics.buckets`. First
response, resolution and customer waits of the requests a selection covers are measured
whenever they happened; "created vs resolved per day" counts filings by filing day and
resolutions by resolution day.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum

from sqlalchemy import Integer, ScalarSelect, SQLColumnExpression, func, select
from sqlalchemy import column as sql_column
from sqlalchemy import values as sql_values

from domain.durations import duration_bucket
from domain.vocabulary import ConsoleType, RequestKind, Role, TaskState
from service.extensions import db
from service.metrics.buckets import (
    TOTAL,
    Duration,
    GroupKey,
    Whole,
    bucket_of,
    counts,
    histograms,
    percentile_table,
)
from service.metrics.selection import Selection
from service.models import RequestFigures, Task, User

# Each measure in calendar time and on the SLA clock (business hours, customer waits out).
MEASURES: dict[str, tuple[Duration, Duration]] = {
    "first_response": (
        RequestFigures.first_response_seconds,
        RequestFigures.first_response_business_seconds,
    ),
    "resolution": (
        RequestFigures.resolution_seconds,
        RequestFigures.resolution_business_seconds,
    ),
    "customer_wait": (
        RequestFigures.customer_wait_seconds,
        RequestFigures.customer_wait_business_seconds,
    ),
}
CLOCKS = ("calendar", "business")
HOUR = 3600.0
DAY = 24 * HOUR
RESOLUTION_BUCKETS = (  # label, lower bound, upper bound (calendar seconds to resolve)
    ("<1 h", 0.0, HOUR),
    ("1-4 h", HOUR, 4 * HOUR),
    ("4-8 h", 4 * HOUR, 8 * HOUR),
    ("8-24 h", 8 * HOUR, DAY),
    ("1-2 d", DAY, 2 * DAY),
    ("2-3 d", 2 * DAY, 3 * DAY),
    ("3-7 d", 3 * DAY, 7 * DAY),
    (">7 d", 7 * DAY, None),
)


# Per group ---------------------------------------------------------------------------------


@dataclass
class Spread:
    """Median and 90th percentile, in seconds (None when nothing was measured)."""

    p50: float | None = None
    p90: float | None = None


@dataclass
class Measure:
    """One measure's spread in calendar time and on the SLA clock."""

    calendar: Spread = field(default_factory=Spread)
    business: Spread = field(default_factory=Spread)


@dataclass
class GroupFigures:
    """The figures of one group (or of the whole selection)."""

    key: str | None
    label: str
    count: int = 0
    resolved: int = 0
    sla_counted: int = 0
    sla_met: int = 0
    first_response: Measure = field(default_factory=Measure)
    resolution: Measure = field(default_factory=Measure)
    customer_wait: Measure = field(default_factory=Measure)

    @property
    def sla_attainment(self) -> float | None:
        """Share of counted requests resolved within target, 0..1 (None when none counted)."""
        return self.sla_met / self.sla_counted if self.sla_counted else None

    @property
    def sla_attainment_percent(self) -> float | None:
        """SLA attainment as a percentage to two decimals, as the API and CSV give it."""
        attainment = self.sla_attainment
        return None if attainment is None else round(attainment * 100, 2)

    def measure(self, name: str) -> Measure:
        """One of the `MEASURES` by name."""
        found: Measure = getattr(self, name)
        return found


def figures(selection: Selection, group_by: str | None = None) -> list[GroupFigures]:
    """The figures of each group (or, without `group_by`, the one entry for the selection)."""
    total, groups = figure_table(selection, group_by)
    return groups if group_by else [total]


def figure_table(
    selection: Selection, group_by: str | None = None, measures: Iterable[str] = MEASURES
) -> tuple[GroupFigures, list[GroupFigures]]:
    """Counts, SLA attainment and percentiles for the whole selection and for each group,
    computed together (the total is there also when the selection is empty). `measures`
    limits the percentiles computed to those measures (the others stay empty)."""
    rows: dict[GroupKey, GroupFigures] = {}
    for g, tally in counts(selection, group_by).items():
        if tally.filed:
            rows[g] = GroupFigures(
                _key(g), "", tally.filed, tally.resolved, tally.sla_counted, tally.sla_met
            )
    keys = [k for k in rows if not isinstance(k, Whole)]
    total = rows.pop(TOTAL, None) or GroupFigures(None, "All requests")
    if group_by is not None:
        for field_name in ("count", "resolved", "sla_counted", "sla_met"):
            setattr(total, field_name, sum(getattr(r, field_name) for r in rows.values()))
    rows[TOTAL] = total
    measures = list(measures)
    columns = [column for name in measures for column in MEASURES[name]]
    found = percentile_table(columns, selection, group_by=group_by, keys=keys)
    for name in measures:
        calendar, business = MEASURES[name]
        for clock, column in (("calendar", calendar), ("business", business)):
            for g, (p50, p90) in found[column.key].items():
                if g in rows:
                    setattr(rows[g].measure(name), clock, Spread(p50, p90))
    rows.pop(TOTAL)
    groups = list(rows.values())
    _label(groups, group_by)
    total.key, total.label = None, "All requests"
    return total, sorted(groups, key=lambda r: (r.key is None, r.key or ""))


def _key(value: GroupKey) -> str | None:
    """A group's key as text: a kind's or console type's value, a user ID, a Monday."""
    if value is None or isinstance(value, Whole):
        return None
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _label(rows: list[GroupFigures], group_by: str | None) -> None:
    names = {}
    if group_by == "agent":
        ids = [int(r.key) for r in rows if r.key is not None]
        names = {
            str(u.id): u.display_name or u.username
            for u in db.session.execute(select(User).where(User.id.in_(ids))).scalars()
        }
    for row in rows:
        if group_by is None:
            row.label = "All requests"
        elif row.key is None:
            row.label = "No agent yet" if group_by == "agent" else "—"
        elif group_by == "kind":
            row.label = RequestKind(row.key).label
        elif group_by == "console_type":
            row.label = ConsoleType(row.key).value.capitalize()
        elif group_by == "agent":
            row.label = names.get(row.key, f"user {row.key}")
        else:
            row.label = f"Week of {row.key}"


# Per day -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayCount:
    """Requests filed and requests resolved on one day (ISO date, UTC)."""

    day: str
    created: int
    resolved: int


def daily(selection: Selection) -> list[DayCount]:
    """Requests filed and requests resolved on each day of the range (every day listed).

    Each day's counts are two index range counts (filing time, resolution time), not a
    grouping of the range's rows by a computed day, which would sort them all.
    """
    filters = selection.filters()
    starts = [selection.since + timedelta(days=n) for n in range(selection.days)]
    days = (
        sql_values(
            sql_column("n", Integer),
            sql_column("since", RequestFigures.created_at.type),
            sql_column("until", RequestFigures.created_at.type),
            name="days",
        )
        .data([(n, start, start + timedelta(days=1)) for n, start in enumerate(starts)])
        .cte("days")
    )

    def count(column: SQLColumnExpression[datetime | None]) -> ScalarSelect[int]:
        return (
            select(func.count())
            .select_from(RequestFigures)
            .where(column >= days.c.since, column < days.c.until, *filters)
            .scalar_subquery()
        )

    statement = select(
        days.c.n, count(RequestFigures.created_at), count(RequestFigures.resolved_at)
    )
    found = {n: (int(made), int(ended)) for n, made, ended in db.session.execute(statement)}
    return [
        DayCount(start.date().isoformat(), *found.get(n, (0, 0))) for n, start in enumerate(starts)
    ]


# Resolution histogram ----------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """A span of time (seconds, `high` excluded; None: open-ended) and how many fall in it."""

    label: str
    low: float
    high: float | None
    count: int


def resolution_histogram(selection: Selection) -> list[Bucket]:
    """How many requests of the selection were resolved within each span of calendar time.

    From the duration's bucket counts: the buckets below an edge count whole, and the one
    bucket an edge cuts is counted up to the edge by one more index seek.
    """
    value = RequestFigures.resolution_seconds
    counted = histograms(value, selection, None, [])[TOTAL]
    where = [*selection.filed(), value.is_not(None)]
    bucket = bucket_of(value)
    edges = [high for _label, _low, high in RESOLUTION_BUCKETS[:-1] if high is not None]
    cuts = [int(duration_bucket(edge) or 0) for edge in edges]
    parts = [
        select(func.count()).where(bucket == cut, value < edge, *where).scalar_subquery()
        for edge, cut in zip(edges, cuts, strict=True)
    ]
    inside = db.session.execute(select(*parts)).one()
    below = [
        sum(n for number, n in counted.items() if number < cut) + int(part)
        for cut, part in zip(cuts, inside, strict=True)
    ]
    totals = [0, *below, sum(counted.values())]
    return [
        Bucket(label, low, high, top - bottom)
        for (label, low, high), (bottom, top) in zip(
            RESOLUTION_BUCKETS, itertools.pairwise(totals), strict=True
        )
    ]


# Per agent ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentLoad:
    """One agent's open load now and figures over the selection."""

    user_id: int
    username: str
    name: str
    open_tasks: int
    resolved: int
    first_response_p50: float | None
    first_response_business_p50: float | None


def agents(selection: Selection) -> list[AgentLoad]:
    """Every agent: claimed tasks now, and over the selection resolved requests and the
    median first response of the requests they took up."""
    people = select(User).where(User.role == Role.AGENT, User.active.is_(True))
    if selection.agent_id is not None:
        people = people.where(User.id == selection.agent_id)
    users = list(db.session.execute(people.order_by(User.username)).scalars())
    ids = [u.id for u in users]
    load = dict(
        db.session.execute(
            select(Task.assignee_id, func.count())
            .where(Task.state == TaskState.CLAIMED, Task.assignee_id.in_(ids))
            .group_by(Task.assignee_id)
        ).all()
    )
    tallies = counts(selection, "agent")
    taken_up = [i for i in ids if i in tallies and tallies[i].filed]
    columns = (
        RequestFigures.first_response_seconds,
        RequestFigures.first_response_business_seconds,
    )
    found = percentile_table(columns, selection, (0.5,), "agent", taken_up)
    calendar, business = (found[column.key] for column in columns)
    return [
        AgentLoad(
            user_id=u.id,
            username=u.username,
            name=u.display_name or u.username,
            open_tasks=int(load.get(u.id, 0)),
            resolved=tallies[u.id].resolved if u.id in tallies else 0,
            first_response_p50=calendar.get(u.id, (None,))[0],
            first_response_business_p50=business.get(u.id, (None,))[0],
        )
        for u in users
    ]


# The figures table as CSV ------------------------------------------------------------------

CSV_COLUMNS = (
    "group",
    "label",
    "count",
    "resolved",
    *(
        f"{measure}_{clock}_{p}_seconds"
        for measure in MEASURES
        for clock in CLOCKS
        for p in ("p50", "p90")
    ),
    "sla_counted",
    "sla_met",
    "sla_attainment_percent",
)


def figures_csv_rows(rows: Iterable[GroupFigures]) -> Iterator[list[str | int]]:
    """The CSV header, then one line per group, in the order of `CSV_COLUMNS`."""
    yield list(CSV_COLUMNS)
    for row in rows:
        line: list[str | int] = [row.key or "", row.label, row.count, row.resolved]
        for name in MEASURES:
            measure = row.measure(name)
            for spread in (measure.calendar, measure.business):
                line.extend(_csv_number(value) for value in (spread.p50, spread.p90))
        line.extend([row.sla_counted, row.sla_met, _csv_number(row.sla_attainment_percent)])
        yield line


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
