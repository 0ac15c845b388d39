"""Counts and exact percentiles over a selection of `request_figures`, by duration bucket.

Nothing loads requests into Python: counts and sums are aggregates, and percentiles are exact
and interpolated like PostgreSQL's `percentile_cont`, by one method on both databases. Each
duration is stored and indexed with its bucket (`domain.durations.DURATION_BUCKETS`): a
range's values are counted per bucket (its whole weeks from the weekly rollups, the days
around them from the index), and the rank wanted is then read from the one bucket that holds
it. So a range costs its weeks and a few buckets' rows, not all its requests, and the figures
stay fast as the history grows.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar

from sqlalchemy import (
    CTE,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    SQLColumnExpression,
    and_,
    case,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute

from domain.durations import DURATION_BUCKETS, bucket_column
from domain.vocabulary import ConsoleType, RequestKind
from service.errors import Invalid
from service.extensions import db
from service.metrics.rollups import COUNTS, NO_AGENT, week_of
from service.metrics.selection import GROUPINGS, Selection
from service.models import AgentRollup, FigureRollup, RequestFigures

# A group's key: a kind, a console type, an agent's user ID (None: no agent yet) or the
# Monday starting a week.
Key = RequestKind | ConsoleType | int | date | None


class Whole:
    """The key of the whole selection among group keys (no group key can equal it)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "TOTAL"


TOTAL: Final = Whole()
GroupKey = Key | Whole
Duration = InstrumentedAttribute[float | None]  # a duration column of `request_figures`
BucketNumber = InstrumentedAttribute[int | None]  # the column of a duration's bucket
Condition = ColumnElement[bool]
PERCENTILES = (0.5, 0.9)
_MAX_TERMS = 400  # compound SELECT terms per statement (SQLite allows 500)
BUCKETS = range(len(DURATION_BUCKETS) + 2)  # every bucket number (domain.durations)
_Statement = TypeVar("_Statement", bound="Select[*tuple[Any, ...]]")


def _dialect() -> str:
    """The name of the database's dialect: `sqlite` or `postgresql`."""
    return db.session.get_bind().dialect.name


def bucket_of(value: Duration) -> BucketNumber:
    """The column holding a duration column's bucket (`domain.durations.bucket_column`)."""
    bucket: BucketNumber = getattr(RequestFigures, bucket_column(value.key))
    return bucket


def _covering(statement: _Statement) -> _Statement:
    """Read a range of `request_figures` from the index covering every figure, by filing time.

    SQLite's planner, with statistics from ANALYZE, may prefer the narrower agent index and
    then fetch each row from the table (several times slower at a million rows); PostgreSQL
    chooses well by itself.
    """
    return statement.with_hint(RequestFigures, "INDEXED BY ix_request_figures_created", "sqlite")


# Groups ------------------------------------------------------------------------------------


def _group_column(group_by: str | None) -> SQLColumnExpression[Key | str] | None:
    """What tells a grouping's groups apart in `request_figures` (None without a grouping); a
    week is the Monday starting it, as a date on PostgreSQL and ISO text on SQLite.

    `Invalid` for a grouping not in `GROUPINGS`.
    """
    if group_by is None:
        return None
    if group_by == "kind":
        return RequestFigures.kind
    if group_by == "console_type":
        return RequestFigures.console_type
    if group_by == "agent":
        return RequestFigures.agent_id
    if group_by == "week":
        return week_of(RequestFigures.created_at, _dialect())
    raise Invalid(
        f"Cannot group by {group_by!r}.",
        fields={"group_by": [f"One of: {', '.join(GROUPINGS)}."]},
    )


def _as_date(value: Key | str) -> date:
    """A week key as a date (SQLite gives the Monday as ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _group_conditions(
    selection: Selection | None, group_by: str | None, key: Key
) -> list[Condition]:
    """The conditions selecting one group's rows of the selection (or, without a selection,
    the one condition telling the group apart), in terms the bucket indexes cover.

    A week's rows are the selection narrowed to that week, so an index seek reads the week's
    span of filing time only.
    """
    if group_by == "week":  # the key is the Monday starting the week
        monday = date.fromisoformat(str(key))
        if selection is None:
            since = datetime.combine(monday, time(0), UTC)
            return [
                and_(
                    RequestFigures.created_at >= since,
                    RequestFigures.created_at < since + timedelta(7),
                )
            ]
        week = replace(
            selection,
            start=max(selection.start, monday),
            end=min(selection.end, monday + timedelta(6)),
        )
        return week.filed()
    column = _group_column(group_by)
    assert column is not None, "a group's key without a grouping"
    condition = column.is_(None) if key is None else column == key
    return [condition] if selection is None else [*selection.filed(), condition]


def _week_within(selection: Selection, monday: date) -> Selection | None:
    """The days of a week (by its Monday) inside the selection, or None if none are."""
    since = max(selection.start, monday)
    until = min(selection.end, monday + timedelta(6))
    return replace(selection, start=since, end=until) if since <= until else None


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
) -> Counter[tuple[str, GroupKey, int]]:
    """Counts over whole weeks from the rollups: {(figure, group key or TOTAL, bucket): n}."""
    rolled: type[FigureRollup] | type[AgentRollup]
    groups: dict[str, SQLColumnExpression[Key]]
    narrowed: list[Condition] = []
    if group_by == "agent" or selection.agent_id is not None:
        # Never with a kind or console type too: `_split` counts those without the rollups.
        rolled = AgentRollup
        groups = {"agent": AgentRollup.agent_id, "week": AgentRollup.week}
        if selection.agent_id is not None:
            narrowed.append(AgentRollup.agent_id == selection.agent_id)
    else:
        rolled = FigureRollup
        groups = {
            "kind": FigureRollup.kind,
            "console_type": FigureRollup.console_type,
            "week": FigureRollup.week,
        }
        if selection.kind is not None:
            narrowed.append(FigureRollup.kind == selection.kind)
        if selection.console_type is not None:
            narrowed.append(FigureRollup.console_type == selection.console_type)
    group = groups.get(group_by or "")
    # The row's width depends on the grouping: its columns are read by position.
    grouped: list[SQLColumnExpression[Any]] = [
        rolled.figure,
        *([] if group is None else [group]),
        rolled.bucket,
    ]
    statement = select(*grouped, func.sum(rolled.count)).where(
        rolled.figure.in_(figures), rolled.week >= weeks[0], rolled.week <= weeks[1], *narrowed
    )
    found: Counter[tuple[str, GroupKey, int]] = Counter()
    for row in db.session.execute(statement.group_by(*grouped)):
        figure, *key, number, count = row
        if group_by == "agent" and key[0] == NO_AGENT:
            key = [None]
        found[(figure, key[0] if key else TOTAL, int(number))] += int(count)
    return found


@dataclass
class Counts:
    """How many requests of a group were filed, resolved, counted for the SLA, met it."""

    filed: int = 0
    resolved: int = 0
    sla_counted: int = 0
    sla_met: int = 0


def counts(selection: Selection, group_by: str | None) -> dict[GroupKey, Counts]:
    """The counts per group (or under `TOTAL` without a grouping). Whole weeks from the
    rollups, the rest from the index covering every figure."""
    group = _group_column(group_by)  # refuses an unknown grouping
    found: defaultdict[GroupKey, Counts] = defaultdict(Counts)
    split = _split(selection, group_by)
    if split.weeks is not None:
        for (figure, rolled_key, number), n in _rolled_up(
            COUNTS, selection, split.weeks, group_by
        ).items():
            tally = found[rolled_key]
            if figure == "filed":
                tally.filed += n
            elif figure == "resolved":
                tally.resolved += n
            else:
                tally.sla_counted += n
                tally.sla_met += n if number == 1 else 0
    grouped: list[SQLColumnExpression[Any]] = [] if group is None else [group]
    for part in split.rest:
        statement = select(
            *grouped,
            func.count(),
            func.count(RequestFigures.resolved_at),
            func.count(RequestFigures.sla_met),
            func.coalesce(func.sum(case((RequestFigures.sla_met.is_(True), 1), else_=0)), 0),
        ).where(*part.filed())
        for row in db.session.execute(_covering(statement).group_by(*grouped)):
            key: GroupKey = TOTAL
            if grouped:
                value, *numbers = row
                key = _as_date(value) if group_by == "week" else value
            else:
                numbers = list(row)
            tally = found[key]
            tally.filed += int(numbers[0])
            tally.resolved += int(numbers[1])
            tally.sla_counted += int(numbers[2])
            tally.sla_met += int(numbers[3])
    return dict(found)


def histograms(
    value: Duration, selection: Selection, group_by: str | None, keys: list[Key]
) -> dict[GroupKey, Counter[int]]:
    """How many values of a duration column each bucket holds, for the selection (`TOTAL`)
    and each group: whole weeks from the rollups, the rest from the bucket index alone."""
    split = _split(selection, group_by)
    found: dict[GroupKey, Counter[int]] = {key: Counter() for key in [TOTAL, *keys]}
    if split.weeks is not None:
        for (_figure, key, number), n in _rolled_up(
            [value.key], selection, split.weeks, group_by
        ).items():
            if key in found:
                found[key][number] += n
    bucket = bucket_of(value)
    for part in split.rest:
        where = [*part.filed(), value.is_not(None)]
        if group_by is None:
            found[TOTAL].update(_bucket_counts(value, where))
        elif group_by == "week":
            # One statement per week: a seek reads the week's span of filing time only.
            for key in keys:
                week = _week_within(part, _as_date(key))
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


def _json_array(*items: ColumnElement[int | None]) -> ColumnElement[list[int | None] | str]:
    """The items as one JSON array (a list on PostgreSQL, JSON text on SQLite)."""
    return (func.json_build_array if _dialect() == "postgresql" else func.json_array)(*items)


def _bucket_numbers() -> CTE:
    """The bucket numbers as a table, so one statement counts bucket by bucket, each with an
    index seek. Counted up by a recursive CTE: a VALUES list of every number took longer to
    compile than the counting took to run."""
    first = select(literal(0, Integer).label("n")).cte("buckets", recursive=True)
    return first.union_all(select(first.c.n + 1).where(first.c.n < len(BUCKETS) - 1))


def _bucket_counts(value: Duration, where: Sequence[Condition]) -> dict[int, int]:
    """How many values of a duration column each bucket holds among the rows `where` selects
    (a span of filing time and filters), from the duration's bucket index alone."""
    bucket = bucket_of(value)
    each = _bucket_numbers()
    count = select(func.count()).where(bucket == each.c.n, *where).scalar_subquery()
    return {int(n): int(tally) for n, tally in db.session.execute(select(each.c.n, count))}


# Percentiles -------------------------------------------------------------------------------


def percentiles(
    value: Duration,
    selection: Selection,
    fractions: Sequence[float] = PERCENTILES,
    group_by: str | None = None,
    keys: Iterable[Key] = (),
) -> dict[GroupKey, tuple[float, ...]]:
    """Continuous percentiles of one duration column: `percentile_table` for one column."""
    return percentile_table([value], selection, fractions, group_by, keys)[value.key]


def percentile_table(
    values: Sequence[Duration],
    selection: Selection,
    fractions: Sequence[float] = PERCENTILES,
    group_by: str | None = None,
    keys: Iterable[Key] = (),
) -> dict[str, dict[GroupKey, tuple[float, ...]]]:
    """Continuous percentiles of duration columns over the selection's rows with a value, in
    SQL.

    Returns {column key: {group key: (one value per fraction)}} for each group that has
    values, and under `TOTAL` for all the rows together (with or without groups). Linear
    interpolation between the two nearest ranks, exactly as `percentile_cont`: rank
    (n - 1) * p counted from 0. `keys` names the groups (the keys a count over the same rows
    found); those only are computed.
    """
    found: dict[str, dict[GroupKey, tuple[float, ...]]] = {}
    keys = list(keys)
    for value in values:
        found[value.key] = {}
        if group_by is not None and not keys:
            continue
        found[value.key] = _bucketed_percentiles(value, selection, fractions, group_by, keys)
    return found


# A run of neighbouring ranks to read: (group's index, bucket, first offset in it, how many),
# and the conditions selecting the group's rows.
_Window = tuple[tuple[int, int, int, int], list[Condition]]


def _bucketed_percentiles(
    value: Duration,
    selection: Selection,
    fractions: Sequence[float],
    group_by: str | None,
    keys: list[Key],
) -> dict[GroupKey, tuple[float, ...]]:
    """Exact percentiles without sorting the whole range.

    Every duration is stored and indexed with its bucket (DURATION_BUCKETS) and filing time,
    and the rollups count each week's values per bucket (`histograms`), so the bucket holding
    each wanted rank is known before any value is read; that bucket is then the only one
    sorted, by a query that skips to the rank inside it.
    """
    bucket = bucket_of(value)
    counted = histograms(value, selection, group_by, keys)
    conditions = [*selection.filed(), value.is_not(None)]
    wanted: list[tuple[GroupKey, list[Condition], list[tuple[int, int]]]] = [
        (TOTAL, conditions, sorted(counted[TOTAL].items()))
    ]
    wanted += [
        (
            key,
            [*_group_conditions(selection, group_by, key), value.is_not(None)],
            sorted(counted[key].items()),
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
    windows: list[_Window] = []
    for index, number, offset in sorted(spot for spot, known in lookups.items() if known is None):
        last = windows[-1][0] if windows else None
        if last is not None and last[:2] == (index, number) and last[2] + last[3] == offset:
            windows[-1] = ((index, number, last[2], last[3] + 1), windows[-1][1])
        else:
            windows.append(((index, number, offset, 1), wanted[index][1]))
    for start in range(0, len(windows), _MAX_TERMS):
        lookups.update(_read_ranks(value, bucket, windows[start : start + _MAX_TERMS]))
    found: dict[GroupKey, tuple[float, ...]] = {}
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


def _locate(runs: list[tuple[int, int]], rank: int) -> tuple[int, int]:
    """The bucket holding a rank (from 0) of the counted values, and the rank's offset in it."""
    before = 0
    for number, count in runs:
        if rank < before + count:
            return number, rank - before
        before += count
    raise AssertionError(f"rank {rank} is beyond the {before} values counted")


def _read_ranks(
    value: Duration, bucket: BucketNumber, windows: list[_Window]
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
    statement: Select[tuple[str, float]] | CompoundSelect = (
        union_all(*parts) if len(parts) > 1 else parts[0]
    )
    runs: dict[int, list[float]] = {}
    for tag, found in db.session.execute(statement):
        runs.setdefault(int(tag), []).append(float(found))
    values = {}
    for tag, ((index, number, offset, count), _where) in enumerate(windows):
        ordered = sorted(runs[tag])  # a union keeps no order: the run's values sort back
        assert len(ordered) == count
        values.update({(index, number, offset + i): v for i, v in enumerate(ordered)})
    return values
