"""How turnaround durations are stored: the figure columns and their logarithmic buckets."""

from __future__ import annotations

from bisect import bisect_right

# Durations, each in its own table column of `request_figures`.
MEASURE_COLUMNS = (
    "first_response_seconds",
    "first_response_business_seconds",
    "resolution_seconds",
    "resolution_business_seconds",
    "customer_wait_seconds",
    "customer_wait_business_seconds",
)


def _bucket_bounds(ratio: float = 1.2, limit: float = 90 * 86400) -> tuple[int, ...]:
    bounds: list[int] = []
    edge = 1.0
    while edge < limit:
        if not bounds or round(edge) > bounds[-1]:
            bounds.append(round(edge))
        edge *= ratio
    return tuple(bounds)


# Upper bounds (seconds, exclusive) of the duration buckets: 1 s, 2 s, ... growing by a fifth
# each, to 90 days; the last bucket is open-ended. See `duration_bucket`.
DURATION_BUCKETS = _bucket_bounds()


def duration_bucket(seconds: float | None) -> int | None:
    """The number of a duration's bucket (None for no duration).

    Bucket 0 holds exactly zero (no wait at all, the common case), bucket i the values below
    DURATION_BUCKETS[i - 1] not in an earlier one, and the last bucket the rest. Each duration
    of `request_figures` is stored with its bucket (`bucket_column`), indexed with the filing
    time, so on SQLite a percentile over a date range counts per bucket from the index and
    sorts one bucket's values only (service.metrics).
    """
    if seconds is None:
        return None
    if seconds <= 0:
        return 0
    return bisect_right(DURATION_BUCKETS, seconds) + 1


def bucket_column(measure_column: str) -> str:
    """The column holding the bucket of a duration column: `resolution_seconds` ->
    `resolution_bucket`."""
    return measure_column.removesuffix("_seconds") + "_bucket"
