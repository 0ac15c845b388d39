"""Business-hours calendar and the SLA clock that runs on it.

Pure and deterministic, so workflow code may import it: standard library only, no I/O beyond
zoneinfo's own time zone data, never the wall clock (callers pass every instant in), no
randomness. Every instant taken in must be timezone-aware; every instant given back is UTC.

Business time is real elapsed time inside the business windows. A window is the wall-clock
span from `start` to `end` on a working day in the calendar's zone, so it keeps its wall-clock
hours across DST changes; a wall time the clock skips (spring forward) opens or closes the
window at the moment of the jump, and a wall time that occurs twice (fall back) means its
first occurrence.

The SLA clock's rules (`SlaClock`) are written once over any kind of instant: `CalendarClock`
runs them on the calendar with datetimes, as the request workflow does, and a cache of the
calendar's windows in epoch seconds can run the very same rules for bulk work.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Generic, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.sla import AT_RISK_RATIO, SlaState, SlaTarget, target_duration

_WEEK = timedelta(days=7)
_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_MIDNIGHT = time(0, 0)
_CONFIG_KEYS = ("timezone", "workdays", "start", "end", "holidays")
# Below this many whole weeks a span is summed day by day; above it, week by week.
_MIN_BLOCK_WEEKS = 1


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days and hours in a time zone; the SLA clock only runs inside them.

    `end` of 00:00 (written "24:00" in config) means midnight at the end of the day, so a
    round-the-clock calendar is `start=time(0), end=time(0)` on all seven days. Holidays are
    dates in the calendar's own zone. Workdays and holidays are stored sorted and deduplicated.
    """

    timezone: str = "UTC"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)  # Monday=0
    start: time = time(9, 0)
    end: time = time(17, 0)
    holidays: tuple[date, ...] = ()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        object.__setattr__(self, "workdays", _check_workdays(self.workdays))
        object.__setattr__(self, "holidays", _check_holidays(self.holidays))
        for name, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, time):
                raise ValueError(f"business hours {name} must be a time, not {value!r}")
            if value.tzinfo is not None:
                raise ValueError(
                    f"business hours {name} must be a wall-clock time without a time zone "
                    "(the calendar's timezone applies)"
                )
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(
                f"business hours end ({_format_time(self.end)}) must be after start "
                f"({_format_time(self.start)}); use 24:00 for midnight"
            )

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | str | None) -> BusinessCalendar:
        """Build a calendar from settings: a mapping, its JSON text, a zone name, or None."""
        if value is None:
            return cls()
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("{"):
                # An environment variable that is not JSON arrives as a bare string: a zone name.
                return cls(timezone=text)
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"calendar config is not valid JSON: {exc}") from exc
        if not isinstance(value, Mapping):
            raise ValueError(
                "calendar config must be a mapping, a JSON object or a time zone name, "
                f"not {type(value).__name__}"
            )
        unknown = sorted(str(key) for key in value if key not in _CONFIG_KEYS)
        if unknown:
            raise ValueError(
                f"unknown calendar setting(s): {', '.join(unknown)}; "
                f"expected {', '.join(_CONFIG_KEYS)}"
            )
        settings: dict[str, Any] = {}
        if "timezone" in value:
            settings["timezone"] = value["timezone"]
        if "workdays" in value:
            settings["workdays"] = _config_list(value["workdays"], "workdays")
        if "start" in value:
            settings["start"] = _parse_time(value["start"], "start", allow_24=False)
        if "end" in value:
            settings["end"] = _parse_time(value["end"], "end", allow_24=True)
        if "holidays" in value:
            settings["holidays"] = tuple(
                _parse_date(item) for item in _config_list(value["holidays"], "holidays")
            )
        return cls(**settings)

    def to_config(self) -> dict[str, Any]:
        """The calendar as JSON-serialisable settings that `from_config` reads back."""
        return {
            "timezone": self.timezone,
            "workdays": list(self.workdays),
            "start": _format_time(self.start),
            "end": "24:00" if self.end == _MIDNIGHT else _format_time(self.end),
            "holidays": [day.isoformat() for day in self.holidays],
        }

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds in [start, end); 0 when end is not after start."""
        return self._between(_utc(start, "start"), _utc(end, "end")).total_seconds()

    def add_business_seconds(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant at which `seconds` of business time have passed since start.

        Zero seconds gives start itself (in UTC), even outside hours; an amount that runs out
        exactly at a window's close gives that close, not the next opening.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"business seconds to add must be finite and >= 0, not {seconds!r}")
        return self._add(_utc(start, "start"), timedelta(seconds=seconds))

    def is_business_time(self, at: datetime) -> bool:
        """Whether the SLA clock is running at this instant."""
        instant = _utc(at, "at")
        rules = _rules(self)
        day = _local_date(rules.zone, instant) - _DAY
        # Neighbouring days too, in case a fall-back across midnight puts an instant's local
        # date a day away from the window that holds it.
        for offset in range(3):
            window = rules.window(day + offset * _DAY)
            if window is not None and window[0] <= instant < window[1]:
                return True
        return False

    def next_business_start(self, at: datetime) -> datetime:
        """The instant the SLA clock next runs: `at` itself (in UTC) if inside hours."""
        instant = _utc(at, "at")
        rules = _rules(self)
        day = _local_date(rules.zone, instant) - _DAY
        while True:
            window = rules.window(day)
            if window is not None and window[1] > instant and window[0] < window[1]:
                return max(window[0], instant)
            day += _DAY

    def _between(self, a: datetime, b: datetime) -> timedelta:
        if b <= a:
            return timedelta(0)
        rules = _rules(self)
        first = _local_date(rules.zone, a) - _DAY
        last = _local_date(rules.zone, b) + _DAY
        # Whole weeks two days clear of either end hold only windows wholly inside [a, b).
        block_start = first + 3 * _DAY
        weeks = ((last - 2 * _DAY) - block_start).days // 7
        if weeks < _MIN_BLOCK_WEEKS:
            return rules.sum_days(first, last + _DAY, a, b)
        block_end = block_start + weeks * _WEEK
        return (
            rules.sum_days(first, block_start, a, b)
            + rules.whole_weeks(block_start, weeks)
            + rules.sum_days(block_end, last + _DAY, a, b)
        )

    def _add(self, a: datetime, remaining: timedelta) -> datetime:
        if not remaining:
            return a
        rules = _rules(self)
        day = _local_date(rules.zone, a) - _DAY
        # Windows of the first days may have opened before `a`, so they are clipped to it.
        for _ in range(3):
            window = rules.window(day)
            if window is not None and window[1] > a:
                opened = max(window[0], a)
                length = window[1] - opened
                if remaining <= length:
                    return opened + remaining
                remaining -= length
            day += _DAY
        while remaining > 2 * rules.week_length:
            weeks = remaining // rules.week_length - 1
            # The block must end strictly before the target, or the instant would fall on the
            # block's last close, which the day walk below would step past.
            while weeks >= 1:
                block = rules.whole_weeks(day, weeks)
                if block < remaining:
                    break
                weeks //= 2
            if weeks < 1:
                break
            remaining -= block
            day += weeks * _WEEK
        while True:
            window = rules.window(day)
            if window is not None:
                length = window[1] - window[0]
                if remaining <= length:
                    return window[0] + remaining
                remaining -= length
            day += _DAY


@dataclass(frozen=True)
class _Rules:
    """A calendar's settings in the shapes the arithmetic needs."""

    zone: ZoneInfo
    workdays: frozenset[int]
    holidays: frozenset[date]
    workday_holidays: tuple[date, ...]
    start: time
    end: time
    day_length: timedelta
    week_length: timedelta

    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC span of business hours on a local date, or None on a day off."""
        if day.weekday() not in self.workdays or day in self.holidays:
            return None
        opens = _instant(self.zone, datetime.combine(day, self.start))
        if self.end == _MIDNIGHT:
            closes = _instant(self.zone, datetime.combine(day + _DAY, _MIDNIGHT))
        else:
            closes = _instant(self.zone, datetime.combine(day, self.end))
        return opens, closes

    def sum_days(
        self, first: date, stop: date, a: datetime | None = None, b: datetime | None = None
    ) -> timedelta:
        """Business time of local dates [first, stop), clipped to [a, b) when given."""
        total = timedelta(0)
        day = first
        while day < stop:
            window = self.window(day)
            if window is not None:
                opens = window[0] if a is None else max(window[0], a)
                closes = window[1] if b is None else min(window[1], b)
                if closes > opens:
                    total += closes - opens
            day += _DAY
        return total

    def whole_weeks(self, first: date, weeks: int) -> timedelta:
        """Business time of `weeks` whole weeks from a local date, by arithmetic where possible."""
        stop = first + weeks * _WEEK
        holidays = bisect_left(self.workday_holidays, stop) - bisect_left(
            self.workday_holidays, first
        )
        total = weeks * self.week_length - holidays * self.day_length
        # A week's windows keep their nominal length unless the UTC offset changes inside or
        # at the edge of one, and they all lie between the week's first midnight and the next.
        # Probing the offset across that span at most three days apart finds every change,
        # since no zone in the time zone database changes offset twice within four days (the
        # closest pair is Africa/Freetown's in 1939; since 1970, 6.96 days). Only weeks with
        # a change are summed day by day.
        edge = _instant(self.zone, datetime.combine(first, _MIDNIGHT))
        for week in range(weeks):
            week_start = first + week * _WEEK
            next_edge = _instant(self.zone, datetime.combine(week_start + _WEEK, _MIDNIGHT))
            probes = (edge + 3 * _DAY, edge + 6 * _DAY, next_edge)
            before = _offset(self.zone, edge - _SECOND)
            if any(_offset(self.zone, probe) != before for probe in probes):
                nominal = self.week_length - self.day_length * (
                    bisect_left(self.workday_holidays, week_start + _WEEK)
                    - bisect_left(self.workday_holidays, week_start)
                )
                total += self.sum_days(week_start, week_start + _WEEK) - nominal
            edge = next_edge
        return total


@lru_cache(maxsize=64)
def _rules(calendar: BusinessCalendar) -> _Rules:
    workdays = frozenset(calendar.workdays)
    if calendar.end == _MIDNIGHT:
        day_length = datetime.combine(date.min + _DAY, _MIDNIGHT) - datetime.combine(
            date.min, calendar.start
        )
    else:
        day_length = datetime.combine(date.min, calendar.end) - datetime.combine(
            date.min, calendar.start
        )
    return _Rules(
        zone=_zone(calendar.timezone),
        workdays=workdays,
        holidays=frozenset(calendar.holidays),
        workday_holidays=tuple(day for day in calendar.holidays if day.weekday() in workdays),
        start=calendar.start,
        end=calendar.end,
        day_length=day_length,
        week_length=len(workdays) * day_length,
    )


def _instant(zone: ZoneInfo, wall: datetime) -> datetime:
    """The earliest UTC instant at which the zone's clock reads `wall` or later."""
    first = wall.replace(tzinfo=zone).utcoffset()
    second = wall.replace(tzinfo=zone, fold=1).utcoffset()
    assert first is not None and second is not None
    if first >= second:
        # Unique, or the first of a repeated (fall-back) hour.
        return (wall - first).replace(tzinfo=UTC)
    # A skipped (spring-forward) wall time: the jump lies between the two readings. The time
    # zone database keeps transitions to whole seconds, so bisect over whole seconds.
    lo = (wall - second).replace(tzinfo=UTC, microsecond=0)
    hi = (wall - first).replace(tzinfo=UTC, microsecond=0) + _SECOND
    while hi - lo > _SECOND:
        mid = lo + (hi - lo) // 2
        mid -= timedelta(microseconds=mid.microsecond)
        if _offset(zone, mid) == second:
            hi = mid
        else:
            lo = mid
    return hi


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def _local_date(zone: ZoneInfo, instant: datetime) -> date:
    return instant.astimezone(zone).date()


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, not {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, not naive ({value.isoformat()})")
    return value.astimezone(UTC)


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"time zone must be an IANA zone name such as 'Europe/Paris', not {name!r}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA zone name such as 'Europe/Paris'"
        ) from exc


def _check_workdays(values: Iterable[object]) -> tuple[int, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"workdays must be a list of weekday numbers, not {values!r}")
    days = set()
    for value in values:
        # bool is an int subclass; True is not a weekday.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
            raise ValueError(
                f"workday {value!r} is not a weekday number from 0 (Monday) to 6 (Sunday)"
            )
        days.add(value)
    if not days:
        raise ValueError("workdays must name at least one weekday")
    return tuple(sorted(days))


def _check_holidays(values: Iterable[object]) -> tuple[date, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"holidays must be a list of dates, not {values!r}")
    days = set()
    for value in values:
        # datetime is a date subclass; a holiday is a whole local day.
        if isinstance(value, datetime) or not isinstance(value, date):
            raise ValueError(f"holiday {value!r} is not a date")
        days.add(value)
    return tuple(sorted(days))


def _config_list(value: object, name: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list, not {value!r}")
    return list(value)


def _parse_time(value: object, name: str, *, allow_24: bool) -> time:
    if isinstance(value, time):
        return value
    if allow_24 and value in ("24:00", "24:00:00"):
        return _MIDNIGHT
    if isinstance(value, str):
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                return parsed
    hint = " (or 24:00)" if allow_24 else ""
    raise ValueError(
        f"business hours {name} must be a wall-clock time like '09:00'{hint}, not {value!r}"
    )


def _parse_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"holiday {value!r} is not a date like '2026-12-25'")


def _format_time(value: time) -> str:
    if value.second == 0 and value.microsecond == 0:
        return value.strftime("%H:%M")
    return value.isoformat()


@dataclass(frozen=True)
class Pause:
    """A span in which the SLA clock stood still, waiting on the customer; end None = ongoing."""

    start: datetime
    end: datetime | None

    def __post_init__(self) -> None:
        start = _utc(self.start, "pause start")
        if self.end is not None and _utc(self.end, "pause end") < start:
            raise ValueError(
                f"pause ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})"
            )


# The SLA clock, written once over any kind of instant ------------------------------------

Instant = TypeVar("Instant", bound="_Instant")
Amount = TypeVar("Amount", bound="_Amount")


class _Instant(Protocol):
    """What the SLA clock needs of an instant: an order."""

    def __lt__(self: Instant, other: Instant, /) -> bool: ...
    def __le__(self: Instant, other: Instant, /) -> bool: ...


class _Amount(Protocol):
    """What the SLA clock needs of an amount of business time: an order, subtraction, scaling."""

    def __lt__(self: Amount, other: Amount, /) -> bool: ...
    def __le__(self: Amount, other: Amount, /) -> bool: ...
    def __sub__(self: Amount, other: Amount, /) -> Amount: ...
    def __mul__(self: Amount, other: float, /) -> Amount: ...


@dataclass(frozen=True)
class BusinessFigures:
    """A request's durations on the SLA clock, in business seconds (None until known)."""

    first_response: float | None
    resolution: float | None
    customer_wait: float | None


@dataclass(frozen=True)
class SlaReading(Generic[Instant]):
    """A request on the SLA clock at one instant: what its projection shows of it."""

    first_response_due: Instant | None  # None while the clock is paused
    resolution_due: Instant | None
    customer_wait: float  # calendar seconds spent waiting on the customer so far
    figures: BusinessFigures


class SlaClock(ABC, Generic[Instant, Amount]):
    """The SLA clock's rules: what has run, when a target is reached, where a request stands.

    A subclass says how business time is measured and added between its instants:
    `CalendarClock` on a `BusinessCalendar` with aware UTC datetimes, exact to the microsecond,
    as the request workflow runs it; a cache of the calendar's windows may run the same rules
    in epoch seconds for bulk work. Pauses are (start, end) spans, end None while open.
    """

    @abstractmethod
    def between(self, start: Instant, end: Instant) -> Amount:
        """Business time in [start, end); none when end is not after start."""

    @abstractmethod
    def add(self, start: Instant, amount: Amount) -> Instant:
        """The earliest instant at which `amount` of business time has passed since start."""

    @abstractmethod
    def target(self, hours: float) -> Amount:
        """A target in hours as business time, refusing what is not a finite number >= 0."""

    @abstractmethod
    def seconds(self, amount: Amount) -> float:
        """Business time in seconds."""

    @abstractmethod
    def wall_seconds(self, start: Instant, end: Instant) -> float:
        """Calendar seconds from start to end."""

    def elapsed(
        self, started: Instant, now: Instant, pauses: Sequence[tuple[Instant, Instant | None]]
    ) -> Amount:
        """Business time the clock has run from started to now, paused spans taken out."""
        total = self.between(started, now)
        # Merged and clipped to [started, now), so off-hours and overlaps are never taken twice.
        for begin, finish in _merged(pauses, started, now):
            total -= self.between(begin, now if finish is None else min(finish, now))
        return total

    def reached(
        self,
        started: Instant,
        target: Amount,
        pauses: Sequence[tuple[Instant, Instant | None]],
        horizon: Instant,
    ) -> Instant | None:
        """The instant the clock reaches `target`, counting pauses begun by `horizon`.

        None if an open pause stops the clock first.
        """
        remaining = target
        running_from = started
        for begin, finish in _merged(pauses, started, horizon):
            run = self.between(running_from, begin)
            if remaining <= run:
                return self.add(running_from, remaining)
            remaining -= run
            if finish is None:
                return None
            running_from = finish
        return self.add(running_from, remaining)

    def due(
        self,
        started: Instant,
        target_hours: float,
        pauses: Sequence[tuple[Instant, Instant | None]],
        now: Instant,
    ) -> Instant | None:
        """When the target is (or was) reached given the pauses so far; None while paused."""
        target = self.target(target_hours)
        if _paused(pauses, now):
            return None
        return self.reached(started, target, pauses, now)

    def state(
        self,
        started: Instant,
        target_hours: float,
        pauses: Sequence[tuple[Instant, Instant | None]],
        now: Instant,
        met_at: Instant | None = None,
        at_risk_ratio: float = AT_RISK_RATIO,
    ) -> SlaState:
        """Where a request stands against one target at `now`, or for good once met at `met_at`.

        Met if met_at is no later than the instant the target was reached, else breached.
        Unmet: breached from that instant on (so at the due time itself, and through the
        off-hours that follow it), else paused inside an open pause, else at risk from
        `at_risk_ratio` of the target, else ok.
        """
        target = self.target(target_hours)
        if not (math.isfinite(at_risk_ratio) and 0 <= at_risk_ratio <= 1):
            raise ValueError(f"at_risk_ratio must be between 0 and 1, not {at_risk_ratio!r}")
        if met_at is not None:
            reached = self.reached(started, target, pauses, met_at)
            return SlaState.MET if reached is None or met_at <= reached else SlaState.BREACHED
        elapsed = self.elapsed(started, now, pauses)
        if target <= elapsed:
            return SlaState.BREACHED
        if _paused(pauses, now):
            return SlaState.PAUSED
        if target * at_risk_ratio <= elapsed:
            return SlaState.AT_RISK
        return SlaState.OK

    def figures(
        self,
        created: Instant,
        first_response: Instant | None,
        resolved: Instant | None,
        pauses: Sequence[tuple[Instant, Instant | None]],
    ) -> BusinessFigures:
        """Time to first response and to resolution on the clock (customer waits taken out),
        and the business time spent waiting on the customer, once the request has ended."""
        first = (
            None
            if first_response is None
            else self.seconds(self.elapsed(created, first_response, pauses))
        )
        if resolved is None:
            return BusinessFigures(first, None, None)
        clock = self.seconds(self.elapsed(created, resolved, pauses))
        waited = self.seconds(self.between(created, resolved)) - clock
        return BusinessFigures(first, clock, waited)

    def reading(
        self,
        created: Instant,
        target: SlaTarget,
        first_response: Instant | None,
        resolved: Instant | None,
        pauses: Sequence[tuple[Instant, Instant | None]],
        now: Instant,
    ) -> SlaReading[Instant]:
        """A request's due times, customer wait and business figures at `now`."""
        return SlaReading(
            first_response_due=self.due(created, target.first_response_hours, pauses, now),
            resolution_due=self.due(created, target.resolution_hours, pauses, now),
            customer_wait=sum(
                self.wall_seconds(begin, now if finish is None else finish)
                for begin, finish in pauses
            ),
            figures=self.figures(created, first_response, resolved, pauses),
        )


@dataclass(frozen=True)
class CalendarClock(SlaClock[datetime, timedelta]):
    """The SLA clock on a business calendar, over aware UTC datetimes."""

    calendar: BusinessCalendar

    def between(self, start: datetime, end: datetime) -> timedelta:
        return self.calendar._between(start, end)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        return self.calendar._add(start, amount)

    def target(self, hours: float) -> timedelta:
        return target_duration(hours, "target_hours")

    def seconds(self, amount: timedelta) -> float:
        return amount.total_seconds()

    def wall_seconds(self, start: datetime, end: datetime) -> float:
        return (end - start).total_seconds()


def _merged(
    pauses: Sequence[tuple[Instant, Instant | None]], lo: Instant, hi: Instant
) -> list[tuple[Instant, Instant | None]]:
    """Pauses begun by `hi`, clipped to start no earlier than `lo`, overlaps merged."""
    spans: list[tuple[Instant, Instant | None]] = []
    for start, finish in sorted(pauses, key=_start) if len(pauses) > 1 else pauses:
        begin = max(start, lo)
        if hi < begin or (finish is not None and finish <= begin):
            continue
        if spans:
            last_begin, last_finish = spans[-1]
            if last_finish is None:
                break
            if begin <= last_finish:
                merged = None if finish is None else max(last_finish, finish)
                spans[-1] = (last_begin, merged)
                continue
        spans.append((begin, finish))
    return spans


def _start(pause: tuple[Instant, Instant | None]) -> Instant:
    return pause[0]


def _paused(pauses: Sequence[tuple[Instant, Instant | None]], at: Instant) -> bool:
    return any(start <= at and (end is None or at < end) for start, end in pauses)


# The SLA clock on a calendar, for callers holding datetimes and `Pause`s ------------------


def _spans(pauses: Sequence[Pause]) -> list[tuple[datetime, datetime | None]]:
    return [
        (_utc(p.start, "pause start"), None if p.end is None else _utc(p.end, "pause end"))
        for p in pauses
    ]


def business_elapsed(
    calendar: BusinessCalendar, started: datetime, now: datetime, pauses: Sequence[Pause]
) -> float:
    """Business seconds the SLA clock has run from started to now, paused spans excluded."""
    start, at = _utc(started, "started"), _utc(now, "now")
    return CalendarClock(calendar).elapsed(start, at, _spans(pauses)).total_seconds()


def business_figures(
    calendar: BusinessCalendar,
    created: datetime,
    first_response: datetime | None,
    resolved: datetime | None,
    pauses: Sequence[Pause],
) -> BusinessFigures:
    """Time to first response and to resolution on the SLA clock (customer waits taken out),
    and the business time spent waiting on the customer, once the request has ended."""
    return CalendarClock(calendar).figures(
        _utc(created, "started"),
        None if first_response is None else _utc(first_response, "now"),
        None if resolved is None else _utc(resolved, "now"),
        _spans(pauses),
    )


def due_at(
    calendar: BusinessCalendar,
    started: datetime,
    target_hours: float,
    pauses: Sequence[Pause],
    now: datetime,
) -> datetime | None:
    """When the target is (or was) reached given the pauses so far; None while paused."""
    start, at = _utc(started, "started"), _utc(now, "now")
    return CalendarClock(calendar).due(start, target_hours, _spans(pauses), at)


def sla_state(
    calendar: BusinessCalendar,
    started: datetime,
    target_hours: float,
    pauses: Sequence[Pause],
    now: datetime,
    met_at: datetime | None = None,
    at_risk_ratio: float = AT_RISK_RATIO,
) -> SlaState:
    """Where a request stands against a target at `now`, or for good once met at `met_at`
    (`SlaClock.state`)."""
    start, at = _utc(started, "started"), _utc(now, "now")
    met = None if met_at is None else _utc(met_at, "met_at")
    return CalendarClock(calendar).state(
        start, target_hours, _spans(pauses), at, met, at_risk_ratio
    )


def sla_reading(
    calendar: BusinessCalendar,
    created: datetime,
    target: SlaTarget,
    first_response: datetime | None,
    resolved: datetime | None,
    pauses: Sequence[Pause],
    now: datetime,
) -> SlaReading[datetime]:
    """A request's due times, customer wait and business figures at `now`."""
    return CalendarClock(calendar).reading(
        _utc(created, "started"),
        target,
        None if first_response is None else _utc(first_response, "now"),
        None if resolved is None else _utc(resolved, "now"),
        _spans(pauses),
        _utc(now, "now"),
    )
