"""Charts drawn on the server as inline SVG, readable without colour and without scripts.

This module turns numbers into geometry (positions in the SVG's own coordinates, texts
already formatted, links); `templates/dashboard/_charts.html` draws it. Series differ by
pattern, dash and marker shape as well as by colour, every value is written beside its mark
when there is room, and each chart carries a table of its numbers for anyone who would rather
read them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MINUTE = 60.0
HOUR = 3600.0
DAY = 24 * HOUR
Format = Callable[[float], str]


@dataclass(frozen=True)
class Point:
    """One value of a series: how it reads, where it leads and what it says to a screen reader."""

    value: float | None
    text: str
    label: str
    href: str | None = None


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Tick:
    at: float
    text: str


@dataclass(frozen=True)
class Mark:
    """A drawn value: a bar (x, y, width, height) or a marker centred on (x, y)."""

    series: int
    x: float
    y: float
    width: float
    height: float
    point: Point
    text_x: float
    text_y: float
    show_text: bool


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class Chart:
    """Everything the template needs to draw one chart and its table."""

    key: str
    title: str
    summary: str
    style: str  # "bars" or "lines"
    width: int
    height: int
    plot: Box
    x_title: str
    y_title: str
    categories: Sequence[str]
    series: Sequence[Series]
    x_ticks: Sequence[Tick]
    y_ticks: Sequence[Tick]
    marks: Sequence[Mark]
    lines: Sequence[str] = field(default_factory=list)  # SVG polyline points per series

    @property
    def rows(self) -> list[tuple[str, list[Point]]]:
        """The table: one row per category, one point per series."""
        return [
            (category, [series.points[i] for series in self.series])
            for i, category in enumerate(self.categories)
        ]

    @property
    def empty(self) -> bool:
        return all(p.value is None or p.value == 0 for s in self.series for p in s.points)


# Scales ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """A value axis from zero: its top and the ticks to draw, labelled in a readable unit."""

    top: float
    ticks: Sequence[tuple[float, str]]


def _step(raw: float, steps: Sequence[float]) -> float:
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in steps if raw <= m * magnitude * (1 + 1e-9))


def count_scale(largest: float, ticks: int = 4) -> Scale:
    """Whole-number ticks from 0 to at least `largest`."""
    step = max(1.0, _step(max(largest, 1.0) / ticks, (1, 2, 5, 10)))
    top = step * max(1, math.ceil(largest / step))
    return Scale(top, [(n * step, f"{n * step:g}") for n in range(round(top / step) + 1)])


def duration_scale(largest_seconds: float, ticks: int = 4) -> Scale:
    """Ticks in minutes, hours or days, whichever reads best for `largest_seconds`."""
    unit, suffix = (
        (MINUTE, "min")
        if largest_seconds < 2 * HOUR
        else (HOUR, "h")
        if largest_seconds < 3 * DAY
        else (DAY, "d")
    )
    largest = max(largest_seconds / unit, 1.0)
    step = _step(largest / ticks, (1, 2, 2.5, 5, 10))
    top = step * math.ceil(largest / step - 1e-9)
    count = round(top / step)
    return Scale(
        top * unit, [(n * step * unit, f"{n * step:g} {suffix}") for n in range(count + 1)]
    )


# Charts ------------------------------------------------------------------------------------

BAR_SIZE = (560, 290)
LINE_SIZE = (1000, 300)
PLOT_MARGIN = Box(left=64, top=24, right=16, bottom=52)  # room for ticks and axis titles
# Above these many categories a line chart drops its value labels, then its markers (links);
# the table below the chart still has every value and link.
LABEL_LIMIT = 31
MARKER_LIMIT = 92
X_TICK_LIMIT = 12


def _plot(size: tuple[int, int]) -> Box:
    width, height = size
    m = PLOT_MARGIN
    return Box(m.left, m.top, width - m.right, height - m.bottom)


def _y(plot: Box, scale: Scale, value: float) -> float:
    return plot.bottom - plot.height * (value / scale.top if scale.top else 0.0)


def _y_ticks(plot: Box, scale: Scale) -> list[Tick]:
    return [Tick(round(_y(plot, scale, value), 1), text) for value, text in scale.ticks]


def bar_chart(
    key: str,
    title: str,
    summary: str,
    categories: Sequence[str],
    series: Sequence[Series],
    scale: Callable[[float], Scale],
    x_title: str,
    y_title: str,
) -> Chart:
    """Vertical bars, grouped by category when there are several series."""
    plot = _plot(BAR_SIZE)
    values = [p.value for s in series for p in s.points if p.value is not None]
    axis = scale(max(values, default=0.0))
    band = plot.width / max(len(categories), 1)
    group = band * (0.72 if len(series) > 1 else 0.6)
    bar = group / max(len(series), 1)
    marks = []
    for i, _category in enumerate(categories):
        start = plot.left + i * band + (band - group) / 2
        for j, one in enumerate(series):
            point = one.points[i]
            x = start + j * bar
            top = _y(plot, axis, point.value or 0.0)
            marks.append(
                Mark(
                    series=j,
                    x=round(x + 1, 1),
                    y=round(top, 1),
                    width=round(bar - 2, 1),
                    height=round(plot.bottom - top, 1),
                    point=point,
                    text_x=round(x + bar / 2, 1),
                    text_y=round(top - 5, 1),
                    show_text=True,
                )
            )
    x_ticks = [
        Tick(round(plot.left + (i + 0.5) * band, 1), category)
        for i, category in enumerate(categories)
    ]
    return Chart(
        key=key,
        title=title,
        summary=summary,
        style="bars",
        width=BAR_SIZE[0],
        height=BAR_SIZE[1],
        plot=plot,
        x_title=x_title,
        y_title=y_title,
        categories=categories,
        series=series,
        x_ticks=x_ticks,
        y_ticks=_y_ticks(plot, axis),
        marks=marks,
    )


def line_chart(
    key: str,
    title: str,
    summary: str,
    categories: Sequence[str],
    tick_texts: Sequence[str],
    series: Sequence[Series],
    x_title: str,
    y_title: str,
) -> Chart:
    """Counts over consecutive categories (days), one line per series with a marker per value.

    Of two values at one category, the larger is labelled above its marker and the smaller
    below, so the two labels never sit on top of each other; equal values are labelled once.
    """
    plot = _plot(LINE_SIZE)
    values = [p.value or 0.0 for s in series for p in s.points]
    axis = count_scale(max(values, default=0.0))
    band = plot.width / max(len(categories), 1)
    labelled = len(categories) <= LABEL_LIMIT
    marks = []
    lines = []
    for j, one in enumerate(series):
        xy = []
        for i, point in enumerate(one.points):
            x = plot.left + (i + 0.5) * band
            y = _y(plot, axis, point.value or 0.0)
            xy.append(f"{x:.1f},{y:.1f}")
            others = [s.points[i].value or 0.0 for k, s in enumerate(series) if k != j]
            tied = any((s.points[i].value or 0.0) == (point.value or 0.0) for s in series[:j])
            above = all((point.value or 0.0) > other for other in others) or (
                j == 0 and all((point.value or 0.0) >= other for other in others)
            )
            below = y + 17
            if below > plot.bottom - 3:  # no room under it: the x-axis labels are there
                above = True
            if len(categories) <= MARKER_LIMIT:
                marks.append(
                    Mark(
                        series=j,
                        x=round(x, 1),
                        y=round(y, 1),
                        width=8,
                        height=8,
                        point=point,
                        text_x=round(x, 1),
                        text_y=round(y - 9 if above else below, 1),
                        show_text=labelled and bool(point.value) and not tied,  # 0: on the axis
                    )
                )
        lines.append(" ".join(xy))
    every = max(1, math.ceil(len(categories) / X_TICK_LIMIT))
    x_ticks = [
        Tick(round(plot.left + (i + 0.5) * band, 1), text)
        for i, text in enumerate(tick_texts)
        if i % every == 0
    ]
    return Chart(
        key=key,
        title=title,
        summary=summary,
        style="lines",
        width=LINE_SIZE[0],
        height=LINE_SIZE[1],
        plot=plot,
        x_title=x_title,
        y_title=y_title,
        categories=categories,
        series=series,
        x_ticks=x_ticks,
        y_ticks=_y_ticks(plot, axis),
        marks=marks,
        lines=lines,
    )
