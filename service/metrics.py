"""Turnaround figures for managers (PRODUCT §6), computed in the database.

Every figure is SQL over `request_figures` (one narrow row per request, kept by the
projection) and its weekly rollups (`figure_rollups`, see service.rollups) or, for what is
open right now, over `requests` and `tasks`. Nothing loads requests into Python: counts and
sums are aggregates, and percentiles are exact and interpolated like PostgreSQL's
`percentile_cont`, by one method on both databases. Each duration is stored and indexed with
its bucket (`domain.durations.DURATION_BUCKETS`): a range's values are counted per bucket (its
whole weeks from the rollups, the days around them from the index), and the rank wanted is
then read from the one bucket that holds it. So a range costs its weeks and a few buckets'
rows, not all its requests, and the figures stay fast as the history grows.

A date range selects the requests *filed* on its days (UTC, both ends included); their
first response, resolution and customer waits are measured whenever they happened. "Created
vs resolved per day" counts filings by filing day and resolutions by resolution day.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy import column as sql_column
from sqlalchemy import values as sql_values

from domain.durations import DURATION_BUCKETS, bucket_column, duration_bucket
from domain.sla import SlaState
from domain.vocabulary import ConsoleType, RequestKind, RequestStatus, Role, TaskState
from service.errors import Invalid
from service.extensions import db
from service.models import (
    AgentRollup,
    Console,
    FigureRollup,
    Request,
    RequestFigures,
    Task,
    User,
    utcnow,
)
from service.rollups import COUNTS, NO_AGENT, week_of

Figures = RequestFigures
GROUPINGS = ("kind", "console_type", "agent", "week")
PERCENTILES = (0.5, 0.9)
# Each measure in calendar time and on the SLA clock (business hours, customer waits out).
MEASURES: dict[str, tuple[Any, Any]] = {
    "first_response": (Figures.first_response_seconds, Figures.first_response_business_seconds),
    "resolution": (Figures.resolution_seconds, Figures.resolution_business_seconds),
    "customer_wait": (Figures.customer_wait_seconds, Figures.customer_wait_business_seconds),
}
OPEN_STATUSES = tuple(s for s in RequestStatus if not s.is_terminal)
HOUR = 3600.0
DAY = 24 * HOUR
AGE_BUCKETS = (  # label, lower bound, upper bound (seconds of age)
    ("<1 d", 0.0, DAY),
    ("1-3 d", DAY, 3 * DAY),
    ("3-7 d", 3 * DAY, 7 * DAY),
    (">7 d", 7 * DAY, None),
)
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
MAX_RANGE_DAYS = 3660


# Selection ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which requests the figures cover: filed from `start` to `end` (days, both included)."""

    start: date
    end: date
    kind: RequestKind | None = None
    console_type: ConsoleType | None = None
    agent_id: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise Invalid(
                "The range ends before it starts.",
                fields={"to": [f"Must be on or after {self.start.isoformat()}."]},
            )
        if (self.end - self.start).days >= MAX_RANGE_DAYS:
            raise Invalid(
                f"The range is longer than {MAX_RANGE_DAYS} days.",
                fields={"from": [f"At most {MAX_RANGE_DAYS} days before 'to'."]},
            )

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time(0), UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the range."""
        return datetime.combine(self.end + timedelta(days=1), time(0), UTC)

    def previous(self) -> Selection:
        """The range of the same length just before this one, with the same filters."""
        span = timedelta(days=self.days)
        return Selection(
            self.start - span, self.end - span, self.kind, self.console_type, self.agent_id
        )

    def filed(self) -> list[ColumnElement[bool]]:
        """Conditions on `request_figures` for the requests this selection covers."""
        return [
            Figures.created_at >= self.since,
            Figures.created_at < self.until,
            *self.filters(),
        ]

    def filters(self) -> list[ColumnElement[bool]]:
        """The kind, console type and agent conditions alone (no dates)."""
        conditions = []
        if self.kind is not None:
            conditions.append(Figures.kind == self.kind)
        if self.console_type is not None:
            conditions.append(Figures.console_type == self.console_type)
        if self.agent_id is not None:
            conditions.append(Figures.agent_id == self.agent_id)
        return conditions


def default_selection(today: date, **filters: Any) -> Selection:
    """The last 30 days, today included."""
    return Selection(today - timedelta(days=29), today, **filters)


def selection_from(
    start: date | None,
    end: date | None,
    *,
    kind: RequestKind | None = None,
    console_type: ConsoleType | None = None,
    agent_id: int | None = None,
) -> Selection:
    """A selection from optional bounds (30 days ending `end` or today), agent checked."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=29)
    if agent_id is not None:
        agent = db.session.get(User, agent_id)
        if agent is None or Role(agent.role) not in (Role.AGENT, Role.MANAGER):
            raise Invalid(
                f"No agent with ID {agent_id}.", fields={"agent": ["Give an agent's user ID."]}
            )
    return Selection(start, end, kind, console_type, agent_id)


def _covering(statement: Select[Any]) -> Select[Any]:
    """Read a range of `request_figures` from the index covering every figure, by filing time.

    SQLite's planner, with statistics from ANALYZE, may prefer the narrower agent index and
    then fetch each row from the table (several times slower at a million rows); PostgreSQL
    chooses well by itself.
    """
    return statement.with_hint(Figures, "INDEXED BY ix_request_figures_created", "sqlite")


# Percentiles -------------------------------------------------------------------------------


def _dialect() -> str:
    return db.session.get_bind().dialect.name


# The key of the whole selection among group keys (no group key can equal it).
TOTAL = ("total",)


def percentiles(
    value: Any,
    selection: Selection,
    fractions: Sequence[float] = PERCENTILES,
    group_by: str | None = None,
    keys: Iterable[Any] = (),
) -> dict[Any, tuple[float, ...]]:
    """Continuous percentiles of one duration column: `percentile_table` for one column."""
    return percentile_table([value], selection, fractions, group_by, keys)[value.key]


def percentile_table(
    values: Sequence[Any],
    selection: Selection,
    fractions: Sequence[float] = PERCENTILES,
    group_by: str | None = None,
    keys: Iterable[Any] = (),
) -> dict[str, dict[Any, tuple[float, ...]]]:
    """Continuous percentiles of duration columns over the selection's rows with a value (and
    in SQL.

    Returns {column key: {group key: (one value per fraction)}} for each group that has
    values, and under `TOTAL` for all the rows together (with or without groups). Linear
    interpolation between the two nearest ranks, exactly as `percentile_cont`: rank
    (n - 1) * p counted from 0. `keys` names the groups (the keys a count over the same rows
    found); those only are computed.
    """
    found: dict[str, dict[Any, tuple[float, ...]]] = {}
    keys = list(keys)
    for value in values:
        found[value.key] = {}
        if group_by is not None and not keys:
            continue
        found[value.key] = _bucketed_percentiles(value, selection, fractions, group_by, keys)
    return found


def _bucketed_percentiles(
    value: Any,
    selection: Selection,
    fractions: Sequence[float],
    group_by: str | None,
    keys: list[Any],
) -> dict[Any, tuple[float, ...]]:
    """Exact percentiles without sorting the whole range.

    Every duration is stored and indexed with its bucket (DURATION_BUCKETS) and filing time,
    and the rollups count each week's values per bucket (`_histograms`), so the bucket holding
    each wanted rank is known before any value is read; that bucket is then the only one
    sorted, by a query that skips to the rank inside it.
    """
    bucket: Any = getattr(Figures, bucket_column(value.key))
    histograms = _histograms(value, selection, group_by, keys)
    conditions = [*selection.filed(), value.is_not(None)]
    wanted: list[tuple[Any, list[ColumnElement[bool]], list[tuple[int, int]]]] = [
        (TOTAL, conditions, sorted(histograms[TOTAL].items()))
    ]
    wanted += [
        (
            key,
            [*_group_conditions(selection, group_by, key), value.is_not(None)],
            sorted(histograms[key].items()),
        )
        for key in keys
    ]
    # Where each wanted rank lies: (bucket, offset in it) per group, then every value that is
    # not a zero is read by one statement, each rank from a sort of its own bucket only.
    spots: list[tuple[int, list[tuple[float, int, int]]]] = []
    lookups: dict[tuple[int, int, int], float | None] = {}
    for index, (_key, _where, runs) in enumerate(wanted):
        total = sum(count for _bucket, count in runs)
        if not total:
            continue
        ranks = []
        for p in fractions:
            position = (total - 1) * p
            below = int(position)
            ranks.append((position - below, below, min(below + 1, total - 1)))
        spots.append((index, ranks))
        for _fraction, *pair in ranks:
            for rank in pair:
                number, offset = _locate(runs, rank)
                lookups[(index, number, offset)] = 0.0 if number == 0 else None
    # Neighbouring ranks in one bucket (the two sides of an interpolation) are one read.
    windows: list[tuple[tuple[int, int, int, int], list[ColumnElement[bool]]]] = []
    for index, number, offset in sorted(spot for spot, known in lookups.items() if known is None):
        last = windows[-1][0] if windows else None
        if last is not None and last[:2] == (index, number) and last[2] + last[3] == offset:
            windows[-1] = ((index, number, last[2], last[3] + 1), windows[-1][1])
        else:
            windows.append(((index, number, offset, 1), wanted[index][1]))
    for start in range(0, len(windows), _MAX_TERMS):
        lookups.update(_read_ranks(value, bucket, windows[start : start + _MAX_TERMS]))
    found: dict[Any, tuple[float, ...]] = {}
    for index, ranks in spots:
        runs = wanted[index][2]
        values = []
        for fraction, below, above in ranks:
            low = lookups[(index, *_locate(runs, below))]
            high = lookups[(index, *_locate(runs, above))]
            assert low is not None and high is not None
            values.append(low + fraction * (high - low))
        found[wanted[index][0]] = tuple(values)
    return found


# Counting by bucket ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    """How a selection is counted: its whole weeks (first and last Monday) from the rollups,
    the days outside them (`rest`) from `request_figures`."""

    weeks: tuple[date, date] | None
    rest: list[Selection]


def _split(selection: Selection, group_by: str | None) -> _Split:
    """`figure_rollups` has no agents and `agent_rollups` no kinds or console types: figures
    that need both are counted from `request_figures` alone."""
    by_agent = group_by == "agent" or selection.agent_id is not None
    by_kind = group_by in ("kind", "console_type") or selection.kind or selection.console_type
    first = selection.start + timedelta(days=(7 - selection.start.weekday()) % 7)
    last = selection.end - timedelta(days=(selection.end.weekday() + 1) % 7) - timedelta(6)
    if (by_agent and by_kind) or last < first:
        return _Split(None, [selection])
    rest = []
    if first > selection.start:
        rest.append(replace(selection, end=first - timedelta(1)))
    if last + timedelta(6) < selection.end:
        rest.append(replace(selection, start=last + timedelta(7)))
    return _Split((first, last), rest)


def _rolled_up(
    figures: Sequence[str], selection: Selection, weeks: tuple[date, date], group_by: str | None
) -> Counter[tuple[str, Any, int]]:
    """Counts over whole weeks from the rollups: {(figure, group key or TOTAL, bucket): n}."""
    rolled: Any = FigureRollup
    if group_by == "agent" or selection.agent_id is not None:
        rolled = AgentRollup
    group = {
        "kind": getattr(rolled, "kind", None),
        "console_type": getattr(rolled, "console_type", None),
        "agent": getattr(rolled, "agent_id", None),
        "week": rolled.week,
    }.get(group_by or "")
    grouped = [rolled.figure, *([] if group is None else [group]), rolled.bucket]
    statement = select(*grouped, func.sum(rolled.count)).where(
        rolled.figure.in_(figures), rolled.week >= weeks[0], rolled.week <= weeks[1]
    )
    if selection.kind is not None:
        statement = statement.where(rolled.kind == selection.kind)
    if selection.console_type is not None:
        statement = statement.where(rolled.console_type == selection.console_type)
    if selection.agent_id is not None:
        statement = statement.where(rolled.agent_id == selection.agent_id)
    found: Counter[tuple[str, Any, int]] = Counter()
    for row in db.session.execute(statement.group_by(*grouped)):
        figure, *key, number, count = row
        if group_by == "agent" and key[0] == NO_AGENT:
            key = [None]
        found[(figure, key[0] if key else TOTAL, int(number))] += int(count)
    return found


def _histograms(
    value: Any,
    selection: Selection,
    group_by: str | None,
    keys: list[Any],
) -> dict[Any, Counter[int]]:
    """How many values of a duration column each bucket holds, for the selection (`TOTAL`)
    and each group: whole weeks from the rollups, the rest from the bucket index alone."""
    split = _split(selection, group_by)
    found: dict[Any, Counter[int]] = {key: Counter() for key in [TOTAL, *keys]}
    if split.weeks is not None:
        for (_figure, key, number), n in _rolled_up(
            [value.key], selection, split.weeks, group_by
        ).items():
            if key in found:
                found[key][number] += n
    bucket: Any = getattr(Figures, bucket_column(value.key))
    for part in split.rest:
        where = [*part.filed(), value.is_not(None)]
        if group_by is None:
            found[TOTAL].update(_bucket_counts(value, where))
        elif group_by == "week":
            # One statement per week: a seek reads the week's span of filing time only.
            for key in keys:
                week = _week_within(part, key)
                if week is not None:
                    where = [*week.filed(), value.is_not(None)]
                    found[key].update(_bucket_counts(value, where))
        else:
            # Groups by a column the index holds: one pass, a sum per group, handed back
            # together as one JSON array (a scalar subquery gives one value).
            apart = [_group_conditions(None, group_by, key)[0] for key in keys]
            each = _bucket_numbers()
            tallies = (
                select(_json_array(*(func.sum(case((c, 1), else_=0)) for c in apart)))
                .where(bucket == each.c.n, *where)
                .scalar_subquery()
            )
            for number, packed in db.session.execute(select(each.c.n, tallies)):
                sums = json.loads(packed) if isinstance(packed, str) else packed
                for key, n in zip(keys, sums, strict=True):
                    found[key][int(number)] += int(n or 0)
    if group_by is not None:
        found[TOTAL] = sum((found[key] for key in keys), Counter())
    return found


def _json_array(*items: Any) -> Any:
    return (func.json_build_array if _dialect() == "postgresql" else func.json_array)(*items)


def _week_within(selection: Selection, monday: Any) -> Selection | None:
    """The days of a week (by its Monday) inside the selection, or None if none are."""
    since = max(selection.start, _as_date(monday))
    until = min(selection.end, _as_date(monday) + timedelta(6))
    return replace(selection, start=since, end=until) if since <= until else None


def _as_date(value: Any) -> date:
    """A week key as a date (SQLite gives the Monday as ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


_MAX_TERMS = 400  # compound SELECT terms per statement (SQLite allows 500)
BUCKETS = range(len(DURATION_BUCKETS) + 2)  # every bucket number (domain.durations)


def _bucket_numbers() -> Any:
    """The bucket numbers as a table, so one statement counts bucket by bucket, each with an
    index seek. Counted up by a recursive CTE: a VALUES list of every number took longer to
    compile than the counting took to run."""
    first = select(literal(0, Integer).label("n")).cte("buckets", recursive=True)
    return first.union_all(select(first.c.n + 1).where(first.c.n < len(BUCKETS) - 1))


def _bucket_counts(value: Any, where: Sequence[ColumnElement[bool]]) -> dict[int, int]:
    """How many values of a duration column each bucket holds among the rows `where` selects
    (a span of filing time and filters), from the duration's bucket index alone."""
    bucket: Any = getattr(Figures, bucket_column(value.key))
    each = _bucket_numbers()
    count = select(func.count()).where(bucket == each.c.n, *where).scalar_subquery()
    return {int(n): int(tally) for n, tally in db.session.execute(select(each.c.n, count))}


def _locate(runs: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding a rank (from 0) of the counted values, and the rank's offset in it."""
    before = 0
    for number, count in runs:
        if rank < before + count:
            return number, rank - before
        before += count
    raise AssertionError(f"rank {rank} is beyond the {before} values counted")


def _read_ranks(
    value: Any,
    bucket: Any,
    windows: list[tuple[tuple[int, int, int, int], list[ColumnElement[bool]]]],
) -> dict[tuple[int, int, int], float]:
    """Read the values at (group, bucket, offset) spots, in one statement: each window
    (group, bucket, first offset, how many) is a run of neighbouring offsets in one bucket."""
    parts = []
    for tag, ((_index, number, offset, count), where) in enumerate(windows):
        run = (
            select(value.label("v"))
            .where(bucket == number, *where)
            .order_by(value)
            .limit(count)
            .offset(offset)
            .subquery()
        )
        parts.append(select(literal_column(str(tag)).label("tag"), run.c.v))
    statement: Any = union_all(*parts) if len(parts) > 1 else parts[0]
    runs: dict[int, list[float]] = {}
    for tag, found in db.session.execute(statement):
        runs.setdefault(int(tag), []).append(float(found))
    values = {}
    for tag, ((index, number, offset, count), _where) in enumerate(windows):
        ordered = sorted(runs[tag])  # a union keeps no order: the run's values sort back
        assert len(ordered) == count
        values.update({(index, number, offset + i): v for i, v in enumerate(ordered)})
    return values


def _group_conditions(
    selection: Selection | None, group_by: str | None, key: Any
) -> list[ColumnElement[bool]]:
    """The conditions selecting one group's rows of the selection (or, without a selection,
    the one condition telling the group apart), in terms the bucket indexes cover.

    A week's rows are the selection narrowed to that week, so an index seek reads the week's
    span of filing time only.
    """
    if group_by == "week":  # the key is the Monday starting the week
        monday = date.fromisoformat(str(key))
        if selection is None:
            since = datetime.combine(monday, time(0), UTC)
            return [and_(Figures.created_at >= since, Figures.created_at < since + timedelta(7))]
        week = replace(
            selection,
            start=max(selection.start, monday),
            end=min(selection.end, monday + timedelta(6)),
        )
        return week.filed()
    column: Any = _group_column(group_by)
    condition = column.is_(None) if key is None else column == key
    return [condition] if selection is None else [*selection.filed(), condition]


# Figures -----------------------------------------------------------------------------------


@dataclass
class Spread:
    """Median and 90th percentile, in seconds (None when nothing was measured)."""

    p50: float | None = None
    p90: float | None = None


@dataclass
class Measure:
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


def _group_column(group_by: str | None) -> Any | None:
    if group_by is None:
        return None
    if group_by == "kind":
        return Figures.kind
    if group_by == "console_type":
        return Figures.console_type
    if group_by == "agent":
        return Figures.agent_id
    if group_by == "week":
        return week_of(Figures.created_at, _dialect())
    raise Invalid(
        f"Cannot group by {group_by!r}.",
        fields={"group_by": [f"One of: {', '.join(GROUPINGS)}."]},
    )


# Constants are inlined, not bound: PostgreSQL matches a GROUP BY expression to the selected
# one textually, and two bound parameters never look the same.
_UTC: Any = literal_column("'UTC'")


def day_of(column: Any) -> Any:
    """The UTC day of a timestamp column, as ISO text on SQLite and a date on PostgreSQL."""
    if _dialect() == "postgresql":
        return cast(func.timezone(_UTC, column), Date)
    return func.date(column)


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(getattr(value, "value", value))


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
    rows: dict[Any, GroupFigures] = {}
    for g, (count, resolved, counted, met) in _counts(selection, group_by).items():
        if count:
            rows[g] = GroupFigures(_key(g), "", count, resolved, counted, met)
    keys = [k for k in rows if k is not TOTAL]
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
                    setattr(getattr(rows[g], name), clock, Spread(p50, p90))
    rows.pop(TOTAL)
    groups = list(rows.values())
    _label(groups, group_by)
    total.key, total.label = None, "All requests"
    return total, sorted(groups, key=lambda r: (r.key is None, r.key or ""))


def _counts(selection: Selection, group_by: str | None) -> dict[Any, list[int]]:
    """Per group (or `TOTAL`): requests, resolved, counted for the SLA, SLA met. Whole weeks
    from the rollups, the rest from the index covering every figure."""
    group = _group_column(group_by)  # refuses an unknown grouping
    found: dict[Any, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    split = _split(selection, group_by)
    if split.weeks is not None:
        for (figure, key, number), n in _rolled_up(
            COUNTS, selection, split.weeks, group_by
        ).items():
            tally = found[key]
            if figure == "filed":
                tally[0] += n
            elif figure == "resolved":
                tally[1] += n
            else:
                tally[2] += n
                tally[3] += n if number == 1 else 0
    grouped = [] if group is None else [group]
    for part in split.rest:
        counts: Select[Any] = select(
            *grouped,
            func.count(),
            func.count(Figures.resolved_at),
            func.count(Figures.sla_met),
            func.coalesce(func.sum(case((Figures.sla_met.is_(True), 1), else_=0)), 0),
        ).where(*part.filed())
        for row in db.session.execute(_covering(counts).group_by(*grouped)):
            key, numbers = (row[0], row[1:]) if grouped else (TOTAL, row)
            if group_by == "week":
                key = _as_date(key)
            tally = found[key]
            for i, n in enumerate(numbers):
                tally[i] += int(n)
    return found


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


@dataclass(frozen=True)
class DayCount:
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
            sql_column("since", Figures.created_at.type),
            sql_column("until", Figures.created_at.type),
            name="days",
        )
        .data([(n, start, start + timedelta(days=1)) for n, start in enumerate(starts)])
        .cte("days")
    )

    def count(column: Any) -> Any:
        return (
            select(func.count())
            .select_from(Figures)
            .where(column >= days.c.since, column < days.c.until, *filters)
            .scalar_subquery()
        )

    statement = select(days.c.n, count(Figures.created_at), count(Figures.resolved_at))
    found = {n: (int(made), int(ended)) for n, made, ended in db.session.execute(statement)}
    return [
        DayCount(start.date().isoformat(), *found.get(n, (0, 0))) for n, start in enumerate(starts)
    ]


@dataclass(frozen=True)
class Bucket:
    label: str
    low: float
    high: float | None
    count: int


def resolution_histogram(selection: Selection) -> list[Bucket]:
    """How many requests of the selection were resolved within each span of calendar time.

    From the duration's bucket counts: the buckets below an edge count whole, and the one
    bucket an edge cuts is counted up to the edge by one more index seek.
    """
    value = Figures.resolution_seconds
    counts = _histograms(value, selection, None, [])[TOTAL]
    where = [*selection.filed(), value.is_not(None)]
    bucket: Any = getattr(Figures, bucket_column(value.key))
    edges = [high for _label, _low, high in RESOLUTION_BUCKETS[:-1] if high is not None]
    cuts = [int(duration_bucket(edge) or 0) for edge in edges]
    parts = [
        select(func.count()).where(bucket == cut, value < edge, *where).scalar_subquery()
        for edge, cut in zip(edges, cuts, strict=True)
    ]
    inside = db.session.execute(select(*parts)).one()
    below = [
        sum(n for number, n in counts.items() if number < cut) + int(part)
        for cut, part in zip(cuts, inside, strict=True)
    ]
    totals = [0, *below, sum(counts.values())]
    return [
        Bucket(label, low, high, top - bottom)
        for (label, low, high), (bottom, top) in zip(
            RESOLUTION_BUCKETS, itertools.pairwise(totals), strict=True
        )
    ]


# What is open now ------------------------------------------------------------------------


def _open_requests(selection: Selection) -> Select[Any]:
    """Open requests matching the selection's filters (not its dates), for backlog figures."""
    statement = select().select_from(Request).where(Request.open_key.is_not(None))
    if selection.kind is not None:
        statement = statement.where(Request.kind == selection.kind)
    if selection.console_type is not None:
        statement = statement.join(Console, Console.id == Request.console_id).where(
            Console.type == selection.console_type
        )
    if selection.agent_id is not None:
        statement = statement.join(Figures, Figures.request_id == Request.id).where(
            Figures.agent_id == selection.agent_id
        )
    return statement


@dataclass(frozen=True)
class Backlog:
    """Open requests right now, by status and by age."""

    total: int
    at_risk: int
    breached: int
    by_status: list[tuple[RequestStatus, int]]
    by_age: list[Bucket]


def backlog(selection: Selection, now: datetime) -> Backlog:
    """What is open now, with the selection's kind, console type and agent filters."""
    base = _open_requests(selection)
    ages = [
        (label, low, high, now - timedelta(seconds=low), high and now - timedelta(seconds=high))
        for label, low, high in AGE_BUCKETS
    ]
    sums = []
    for _label, _low, _high, newest, oldest in ages:
        inside = (
            Request.created_at <= newest
            if oldest is None
            else and_(Request.created_at <= newest, Request.created_at > oldest)
        )
        sums.append(func.coalesce(func.sum(case((inside, 1), else_=0)), 0))
    sla = [
        func.coalesce(func.sum(case((Request.sla_state == state, 1), else_=0)), 0)
        for state in (SlaState.AT_RISK, SlaState.BREACHED)
    ]
    # Conditional sums, not GROUP BY: one pass over the open requests' own index.
    statuses = [
        func.coalesce(func.sum(case((Request.status == status, 1), else_=0)), 0)
        for status in OPEN_STATUSES
    ]
    row = db.session.execute(base.add_columns(func.count(), *sla, *statuses, *sums)).one()
    total, at_risk, breached, *counts = (int(n) for n in row)
    by_status, age_counts = counts[: len(OPEN_STATUSES)], counts[len(OPEN_STATUSES) :]
    return Backlog(
        total=total,
        at_risk=at_risk,
        breached=breached,
        by_status=[(s, n) for s, n in zip(OPEN_STATUSES, by_status, strict=True) if n],
        by_age=[
            Bucket(label, low, high, n)
            for (label, low, high, _n, _o), n in zip(ages, age_counts, strict=True)
        ],
    )


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
    counts = _counts(selection, "agent")
    taken_up = [i for i in ids if counts.get(i, (0,))[0]]
    columns = (Figures.first_response_seconds, Figures.first_response_business_seconds)
    found = percentile_table(columns, selection, (0.5,), "agent", taken_up)
    calendar, business = (found[column.key] for column in columns)
    return [
        AgentLoad(
            user_id=u.id,
            username=u.username,
            name=u.display_name or u.username,
            open_tasks=int(load.get(u.id, 0)),
            resolved=counts.get(u.id, (0, 0))[1],
            first_response_p50=calendar.get(u.id, (None,))[0],
            first_response_business_p50=business.get(u.id, (None,))[0],
        )
        for u in users
    ]


@dataclass(frozen=True)
class Tiles:
    """The dashboard's headline: open now, and median resolution against the prior period."""

    open: int
    at_risk: int
    breached: int
    resolution_p50: float | None
    previous_resolution_p50: float | None


def tiles(selection: Selection, now: datetime) -> Tiles:
    """Open, at risk and breached now; median calendar resolution this period and the last."""
    open_now = backlog(selection, now)
    medians = []
    for period in (selection, selection.previous()):
        found = percentiles(Figures.resolution_seconds, period, (0.5,))
        medians.append(found[TOTAL][0] if TOTAL in found else None)
    return Tiles(open_now.total, open_now.at_risk, open_now.breached, *medians)


# Export ------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "group",
    "label",
    "count",
    "resolved",
    *(
        f"{measure}_{clock}_{p}_seconds"
        for measure in MEASURES
        for clock in ("calendar", "business")
        for p in ("p50", "p90")
    ),
    "sla_counted",
    "sla_met",
    "sla_attainment_percent",
)


def figures_json(row: GroupFigures) -> dict[str, Any]:
    """One group's figures as the API shows them (seconds; attainment 0..100)."""
    attainment = row.sla_attainment
    return {
        "group": row.key,
        "label": row.label,
        "count": row.count,
        "resolved": row.resolved,
        **{
            measure: {
                clock: {"p50": spread.p50, "p90": spread.p90}
                for clock, spread in (
                    ("calendar", getattr(row, measure).calendar),
                    ("business", getattr(row, measure).business),
                )
            }
            for measure in MEASURES
        },
        "sla": {
            "counted": row.sla_counted,
            "met": row.sla_met,
            "attainment_percent": None if attainment is None else round(attainment * 100, 2),
        },
    }


def figures_csv_rows(rows: Iterable[GroupFigures]) -> Iterable[list[Any]]:
    """The CSV header, then one line per group, in the order of `CSV_COLUMNS`."""
    yield list(CSV_COLUMNS)
    for row in rows:
        data = figures_json(row)
        line: list[Any] = [row.key or "", row.label, row.count, row.resolved]
        for measure in MEASURES:
            for clock in ("calendar", "business"):
                line.extend(_csv_number(data[measure][clock][p]) for p in ("p50", "p90"))
        line.extend([row.sla_counted, row.sla_met, _csv_number(data["sla"]["attainment_percent"])])
        yield line


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def report(selection: Selection, group_by: str | None, now: datetime) -> dict[str, Any]:
    """Every figure of the selection, as the API returns it."""
    totals, groups = figure_table(selection, group_by)
    open_now = backlog(selection, now)
    return {
        "from_": selection.start,
        "to": selection.end,
        "group_by": group_by,
        "totals": figures_json(totals),
        "groups": [figures_json(g) for g in groups],
        "daily": daily(selection),
        "backlog": {
            "total": open_now.total,
            "at_risk": open_now.at_risk,
            "breached": open_now.breached,
            "by_status": [{"status": s, "count": n} for s, n in open_now.by_status],
            "by_age": open_now.by_age,
        },
        "agents": agents(selection),
    }
