"""Synthetic request history for demos and benchmarks (`linkdesk demo-history`).

Writes historical requests straight into the projection (`requests`, `request_figures`,
`tasks`, `timeline_events`), as their workflows would have left them, so none of them ever
needs a workflow: every request is terminal, its `open_key` NULL, and it was resolved before
the history ends. It reuses the directory that is there (consoles, instances, partners,
instance admins, agents), the approval policy and SLA targets of the database and the app's
business calendar; `service.demo.simulator` makes the requests.

Speed comes from four things: the calendar's windows are cached as epoch seconds, so business
time is a subtraction and adding business time a bisection (`BusinessClock`, some 30 times
faster than asking the calendar); timestamps are formatted as the database stores them; rows
go in with one executemany per table and batch on SQLite and with COPY on PostgreSQL, one
transaction per batch; and a batch is written on a second thread while the next is made.
"""

from __future__ import annotations

import time as timer
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any

from flask import current_app
from sqlalchemy import Connection, select, text

from domain.calendar import BusinessCalendar
from domain.kinds import DEFAULT_POLICY, KINDS
from domain.sla import SlaTarget
from domain.vocabulary import ConsoleType, RequestKind, Role
from service import config
from service.demo.clock import DAY, BusinessClock
from service.demo.simulator import TABLES, Directory, Person, Simulator, Stamps
from service.extensions import db
from service.metrics import rollups
from service.models import (
    ApprovalPolicy,
    Console,
    Instance,
    Relationship,
    SlaTargetSetting,
    User,
    format_request_id,
    user_instances,
)

DEFAULT_DAYS = 1095
DEFAULT_BATCH = 5000
Batch = dict[str, list[tuple[Any, ...]]]  # rows by table, in TABLES order


class HistoryRefused(RuntimeError):
    """The history cannot be written here; the message says what to do."""


@dataclass(frozen=True)
class HistoryOptions:
    """What to generate: how many requests, over which days, from which seed."""

    requests: int
    days: int = DEFAULT_DAYS
    until: date | None = None  # the first day after the history (UTC); None: today
    seed: int = 0
    batch_size: int = DEFAULT_BATCH
    allow_non_sqlite: bool = False


@dataclass
class HistorySummary:
    """What was written, and how long it took."""

    requests: int = 0
    tasks: int = 0
    events: int = 0
    first_id: int = 0
    last_id: int = 0
    since: date = date.min
    until: date = date.min
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    sla_counted: int = 0
    sla_met: int = 0

    @property
    def first_public_id(self) -> str:
        return format_request_id(self.first_id)

    @property
    def last_public_id(self) -> str:
        return format_request_id(self.last_id)


# The directory ---------------------------------------------------------------------------


def load_directory(conn: Connection) -> Directory:
    """Read what the history needs; refuses when there is nothing to file requests with."""
    consoles = [
        (row.id, row.code, ConsoleType(row.type))
        for row in conn.execute(
            select(Console.id, Console.code, Console.type)
            .where(Console.removed_at.is_(None))
            .order_by(Console.id)
        )
    ]
    instances = [
        (row.id, row.code)
        for row in conn.execute(
            select(Instance.id, Instance.code)
            .where(Instance.removed_at.is_(None))
            .order_by(Instance.id)
        )
    ]
    if not consoles or not instances:
        raise HistoryRefused(
            "There are no consoles or instances to file requests for. "
            "Run `linkdesk seed-demo` first (or import a directory with `linkdesk import-csv`)."
        )
    users = list(
        conn.execute(
            select(User.id, User.username, User.role, User.console_id)
            .where(User.active.is_(True))
            .order_by(User.id)
        )
    )
    agents = [(u.id, u.username) for u in users if Role(u.role) == Role.AGENT]
    if not agents:
        raise HistoryRefused(
            "There are no agent users to work the requests. "
            "Run `linkdesk seed-demo` first (or add agents with `linkdesk create-user`)."
        )
    partners: dict[int, list[Person]] = {}
    for u in users:
        if Role(u.role) == Role.PARTNER and u.console_id is not None:
            partners.setdefault(u.console_id, []).append((u.id, u.username))
    names = {u.id: u.username for u in users if Role(u.role) == Role.INSTANCE_ADMIN}
    admins: dict[int, list[Person]] = {}
    for user_id, instance_id in conn.execute(
        select(user_instances.c.user_id, user_instances.c.instance_id).order_by(
            user_instances.c.instance_id, user_instances.c.user_id
        )
    ):
        if user_id in names:
            admins.setdefault(instance_id, []).append((user_id, names[user_id]))
    all_partners = [p for people in partners.values() for p in people]
    if not all_partners and not names:
        raise HistoryRefused(
            "There are no partner or instance admin users to file requests. "
            "Run `linkdesk seed-demo` first (or add them with `linkdesk create-user`)."
        )
    index = {instance_id: i for i, (instance_id, _code) in enumerate(instances)}
    related: dict[int, list[int]] = {}
    for console_id, instance_id in conn.execute(
        select(Relationship.console_id, Relationship.instance_id).order_by(Relationship.id)
    ):
        if instance_id in index:
            related.setdefault(console_id, []).append(index[instance_id])
    steps = {key: tuple(s.value for s in value) for key, value in DEFAULT_POLICY.items()}
    for kind, console_type, policy in conn.execute(
        select(ApprovalPolicy.kind, ApprovalPolicy.console_type, ApprovalPolicy.steps)
    ):
        steps[(RequestKind(kind), ConsoleType(console_type))] = tuple(policy)
    targets = {kind: rule.default_sla for kind, rule in KINDS.items()}
    for kind, first_hours, resolution_hours in conn.execute(
        select(
            SlaTargetSetting.kind,
            SlaTargetSetting.first_response_hours,
            SlaTargetSetting.resolution_hours,
        )
    ):
        targets[RequestKind(kind)] = SlaTarget(first_hours, resolution_hours)
    return Directory(
        consoles=consoles,
        instances=instances,
        related=related,
        partners=partners,
        all_partners=all_partners,
        admins=admins,
        all_admins=sorted(names.items()),
        agents=agents,
        managers=[(u.id, u.username) for u in users if Role(u.role) == Role.MANAGER],
        steps=steps,
        targets=targets,
    )


# Writing ---------------------------------------------------------------------------------


class Writer:
    """Reserves request IDs and inserts batches, one transaction each."""

    stamp_suffix = ""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def reserve(self, count: int) -> int:
        """The first of `count` request IDs no filing will take; the sequence moves past them."""
        raise NotImplementedError

    def write(self, batch: Batch) -> None:
        """Insert one batch of rows, table by table, parents first, and commit."""
        raise NotImplementedError

    def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load."""
        raise NotImplementedError

    def close(self) -> None:
        """Leave the connection as it was found, for the pool."""


class SqliteWriter(Writer):
    """Plain executemany; the requests table's AUTOINCREMENT counter guards the IDs."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.statements = {
            table: f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
            for table, columns in TABLES
        }
        # Every value of an enum column comes from its enum, and SQLite evaluates a CHECK
        # constraint's IN list row by row at a cost larger than the rest of the insert, so
        # this connection skips them while it loads (`close` turns them back on).
        self.cache_size = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        conn.exec_driver_sql("PRAGMA ignore_check_constraints=ON")
        conn.exec_driver_sql("PRAGMA cache_size=-65536")  # 64 MB: index pages stay in memory
        conn.commit()

    def reserve(self, count: int) -> int:
        with self.conn.begin():
            top = self.conn.exec_driver_sql(
                "SELECT max(coalesce((SELECT max(id) FROM requests), 0), "
                "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'requests'), 0))"
            ).scalar_one()
            last = int(top) + count
            moved = self.conn.exec_driver_sql(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'requests'", (last,)
            )
            if not moved.rowcount:
                self.conn.exec_driver_sql(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('requests', ?)", (last,)
                )
        return int(top) + 1

    def write(self, batch: Batch) -> None:
        with self.conn.begin():
            for table, _columns in TABLES:
                if batch[table]:
                    self.conn.exec_driver_sql(self.statements[table], batch[table])

    def analyze(self) -> None:
        with self.conn.begin():
            self.conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            self.conn.exec_driver_sql("ANALYZE")

    def close(self) -> None:
        self.conn.rollback()
        self.conn.exec_driver_sql("PRAGMA ignore_check_constraints=OFF")
        self.conn.exec_driver_sql(f"PRAGMA cache_size={int(self.cache_size)}")
        self.conn.commit()


class PostgresWriter(Writer):
    """COPY through psycopg; the requests sequence is set past the IDs before writing."""

    stamp_suffix = "+00"

    def reserve(self, count: int) -> int:
        with self.conn.begin():
            sequence = self.conn.execute(
                text("SELECT pg_get_serial_sequence('requests', 'id')")
            ).scalar_one()
            # Filings wait while the block is taken, so none can slip into it.
            self.conn.execute(text("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE"))
            top = self.conn.execute(
                text(
                    "SELECT greatest((SELECT coalesce(max(id), 0) FROM requests), "
                    "coalesce(pg_sequence_last_value(CAST(:seq AS regclass)), 0))"
                ),
                {"seq": sequence},
            ).scalar_one()
            self.conn.execute(
                text("SELECT setval(CAST(:seq AS regclass), :last)"),
                {"seq": sequence, "last": int(top) + count},
            )
        return int(top) + 1

    def write(self, batch: Batch) -> None:
        with self.conn.begin():
            raw = self.conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                for table, columns in TABLES:
                    if not batch[table]:
                        continue
                    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(statement) as copy:
                        for row in batch[table]:
                            copy.write_row(row)

    def analyze(self) -> None:
        # VACUUM as well: it marks the new pages all-visible, so counts and index-only scans
        # need not visit the table (autovacuum would, some time later). Not in a transaction.
        self.conn.commit()
        tables = ", ".join([*(table for table, _ in TABLES), "figure_rollups", "agent_rollups"])
        self.conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"VACUUM (ANALYZE) {tables}"
        )


# The whole run ---------------------------------------------------------------------------


@dataclass
class Plan:
    """A checked run: the options, the span, and the directory it draws from."""

    options: HistoryOptions
    since: date
    until: date
    directory: Directory
    calendar: BusinessCalendar


def prepare(options: HistoryOptions, today: date | None = None) -> Plan:
    """Check that the history can be written here, and read the directory it draws from."""
    if not config.is_sqlite(current_app.config["DATABASE_URL"]) and not options.allow_non_sqlite:
        raise HistoryRefused(
            "Refusing to write synthetic history into a non-SQLite database: it would mix "
            "made-up requests with real ones. Pass --allow-non-sqlite if you mean it."
        )
    until = options.until or today or datetime.now(UTC).date()
    since = until - timedelta(days=options.days)
    with db.engine.connect() as conn:
        directory = load_directory(conn)
        conn.rollback()
    calendar = BusinessCalendar.from_config(current_app.config["SLA_CALENDAR"])
    return Plan(options, since, until, directory, calendar)


def write(plan: Plan, progress: Callable[[int], None] | None = None) -> HistorySummary:
    """Generate the planned requests and write them batch by batch; returns what was written."""
    started = timer.perf_counter()
    options = plan.options
    since = datetime.combine(plan.since, time(0), UTC).timestamp()
    until = datetime.combine(plan.until, time(0), UTC).timestamp()
    summary = HistorySummary(since=plan.since, until=plan.until)
    db.session.remove()  # no session transaction may hold SQLite's write lock meanwhile
    with db.engine.connect() as conn:
        writer: Writer = (
            PostgresWriter(conn) if conn.dialect.name == "postgresql" else SqliteWriter(conn)
        )
        try:
            first = writer.reserve(options.requests)
            batches = _batches(plan, writer.stamp_suffix, since, until, first, summary)
            _write_all(writer, batches, summary, progress)
            with conn.begin():
                rollups.rebuild(conn)
            writer.analyze()
        finally:
            writer.close()
    summary.first_id, summary.last_id = first, first + summary.requests - 1
    summary.seconds = timer.perf_counter() - started
    return summary


def _batches(
    plan: Plan, suffix: str, since: float, until: float, first: int, summary: HistorySummary
) -> Iterator[Batch]:
    """The requests in filing order, numbered from `first`, as batches of rows by table."""
    options = plan.options
    clock = BusinessClock(plan.calendar, since, until + 60 * DAY)
    simulator = Simulator(plan.directory, clock, Stamps(suffix), Random(options.seed), since, until)
    number = first
    batch: Batch = {table: [] for table, _ in TABLES}
    for count, day in simulator.filing_days(options.requests):
        for created in simulator.filing_times(count, day):
            made = simulator.make(number, created)
            number += 1
            batch["requests"].append(made.request)
            batch["request_figures"].append(made.figures)
            batch["tasks"].extend(made.tasks)
            batch["timeline_events"].extend(made.events)
            summary.outcomes[made.status] += 1
            if made.sla_met is not None:
                summary.sla_counted += 1
                summary.sla_met += made.sla_met
            if len(batch["requests"]) == options.batch_size:
                yield batch
                batch = {table: [] for table, _ in TABLES}
    if batch["requests"]:
        yield batch


def _write_all(
    writer: Writer,
    batches: Iterator[Batch],
    summary: HistorySummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Write each batch on a thread of its own while the next one is made.

    The database does its share of an insert without holding the GIL, so on two cores
    making and writing overlap; one batch at most is in flight, so memory stays flat.
    """

    def landed(future: Future[None], batch: Batch) -> None:
        future.result()
        summary.requests += len(batch["requests"])
        summary.tasks += len(batch["tasks"])
        summary.events += len(batch["timeline_events"])
        if progress is not None:
            progress(len(batch["requests"]))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-history") as pool:
        in_flight: tuple[Future[None], Batch] | None = None
        for batch in batches:
            if in_flight is not None:
                landed(*in_flight)
            in_flight = (pool.submit(writer.write, batch), batch)
        if in_flight is not None:
            landed(*in_flight)


def generate(
    options: HistoryOptions, progress: Callable[[int], None] | None = None
) -> HistorySummary:
    """Check, then write the history in one go."""
    return write(prepare(options), progress)
