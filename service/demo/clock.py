"""The SLA clock on the business calendar cached as epoch seconds, for `demo-history`'s bulk
arithmetic: the same rules as the workflow's (`domain.calendar.SlaClock`), some 30 times faster
than asking the calendar."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar, SlaClock

DAY = 86_400
HOUR = 3600.0


class BusinessClock(SlaClock[float, float]):
    """A calendar's business time as cached windows in epoch seconds, for bulk arithmetic.

    `position(t)` is the business time from the clock's first window to instant t, so
    business time between two instants is a subtraction, and `add(t, s)` is a bisection. The
    windows are read day by day through the calendar's public methods and answers match
    `add_business_seconds` and `business_seconds_between` to the second. Windows are added on
    demand past the span first asked for. Amounts of business time are seconds.
    """

    def __init__(self, calendar: BusinessCalendar, since: float, until: float) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self.opens: list[float] = []
        self.closes: list[float] = []
        self.before: list[float] = []  # business seconds before each window
        self.through: list[float] = []  # business seconds to the end of each window
        self.days: list[tuple[date, float, float, float | None, float | None]] = []
        self._next = datetime.fromtimestamp(since, self.zone).date() - timedelta(days=2)
        self._extend(until)

    def _midnight(self, day: date) -> float:
        return datetime.combine(day, time(0), self.zone).timestamp()

    def _extend(self, until: float) -> None:
        """Read windows day by day until a window closes after `until`."""
        idle = 0
        while not self.closes or self.closes[-1] <= until or self._midnight(self._next) <= until:
            day = self._next
            self._next = day + timedelta(days=1)
            start, end = self._midnight(day), self._midnight(self._next)
            starts = datetime.fromtimestamp(start, UTC)
            opens = self.calendar.next_business_start(starts).timestamp()
            if opens >= end:
                self.days.append((day, start, end, None, None))
                idle += 1
                if idle > 400:
                    raise ValueError("the business calendar has no business hours")
                continue
            idle = 0
            ends = datetime.fromtimestamp(end, UTC)
            length = round(self.calendar.business_seconds_between(starts, ends))
            done = self.through[-1] if self.through else 0.0
            self.opens.append(opens)
            self.closes.append(opens + length)
            self.before.append(done)
            self.through.append(done + length)
            self.days.append((day, start, end, opens, opens + length))

    def position(self, at: float) -> float:
        """Business seconds from the first cached window to `at`."""
        i = bisect_right(self.closes, at)
        if i == len(self.closes):
            self._extend(at + 30 * DAY)
            i = bisect_right(self.closes, at)
        opens = self.opens[i]
        return self.before[i] + (at - opens if at > opens else 0.0)

    def between(self, start: float, end: float) -> float:
        """Business seconds in [start, end)."""
        return self.position(end) - self.position(start) if end > start else 0.0

    def add(self, start: float, amount: float) -> float:
        """The earliest instant at which `amount` seconds of business time have passed since
        start."""
        if amount <= 0:
            return start
        target = self.position(start) + amount
        j = bisect_left(self.through, target)
        while j == len(self.through):
            self._extend(self.closes[-1] + amount * 2 + 30 * DAY)
            j = bisect_left(self.through, target)
        return self.opens[j] + (target - self.before[j])

    def target(self, hours: float) -> float:
        """A target in hours as business seconds (targets are checked when their
        `SlaTarget` is made)."""
        return hours * HOUR

    def seconds(self, amount: float) -> float:
        """Business seconds, as they are."""
        return amount

    def wall_seconds(self, start: float, end: float) -> float:
        """Calendar seconds from start to end."""
        return end - start
