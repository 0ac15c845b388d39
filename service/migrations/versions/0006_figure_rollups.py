"""figure rollups: weekly tallies of the turnaround figures; PostgreSQL gets the bucket indexes

The dashboard reads a range's whole weeks from `figure_rollups` (by kind and console type) or
`agent_rollups` (by agent) and only its part weeks from `request_figures` (service.metrics.rollups),
and computes percentiles the same way on both databases, so PostgreSQL now has the duration
bucket indexes SQLite had since 0004. The rollups of the figures already stored are counted
here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:00:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


# The duration columns of `request_figures` when this migration was written, frozen here with
# the rollups' first count below: a later change to the live ones (domain.durations,
# service.metrics.rollups) must not change what it builds.
MEASURE_COLUMNS = (
    "first_response_seconds",
    "first_response_business_seconds",
    "resolution_seconds",
    "resolution_business_seconds",
    "customer_wait_seconds",
    "customer_wait_business_seconds",
)
NO_AGENT = 0  # the agent of requests nobody took up yet


def bucket_column(measure_column):
    """The column holding a duration's bucket: `resolution_seconds` -> `resolution_bucket`."""
    return measure_column.removesuffix("_seconds") + "_bucket"


def _enum(name, values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade():
    op.create_table(
        'figure_rollups',
        sa.Column('figure', sa.String(length=40), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('kind', _enum('request_kind', ['enable_access', 'establish_link', 'dissociate_link']), nullable=False),
        sa.Column('console_type', _enum('console_type', ['accountant', 'partner', 'management']), nullable=False),
        sa.Column('bucket', sa.SmallInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('figure', 'week', 'kind', 'console_type', 'bucket', name=op.f('pk_figure_rollups')),
        sqlite_with_rowid=False,
    )
    op.create_table(
        'agent_rollups',
        sa.Column('figure', sa.String(length=40), nullable=False),
        sa.Column('week', sa.Date(), nullable=False),
        sa.Column('agent_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('bucket', sa.SmallInteger(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('figure', 'week', 'agent_id', 'bucket', name=op.f('pk_agent_rollups')),
        sqlite_with_rowid=False,
    )
    bind = op.get_bind()
    _count_rollups(bind.dialect.name)
    if bind.dialect.name == "postgresql":
        for column in MEASURE_COLUMNS:
            bucket = bucket_column(column)
            op.create_index(
                f"ix_request_figures_{bucket}",
                "request_figures",
                [bucket, "created_at", column, "kind", "console_type", "agent_id"],
                postgresql_where=sa.text(f"{bucket} IS NOT NULL"),
            )
        op.execute("ANALYZE request_figures")
    op.execute("ANALYZE figure_rollups")
    op.execute("ANALYZE agent_rollups")


def _count_rollups(dialect):
    """Fill both rollup tables from the figures already stored.

    A row counts the requests filed in a UTC week (Monday to Sunday) that have a figure in a
    bucket: `filed` every request and `resolved` the resolved ones (bucket 0), `sla_met` those
    judged against the SLA (bucket 1 when met, 0 when not), and each duration column its values
    by their stored bucket. `figure_rollups` splits them by kind and console type,
    `agent_rollups` by agent (NO_AGENT for none).
    """
    if dialect == "postgresql":
        week = "CAST(date_trunc('week', timezone('UTC', created_at)) AS DATE)"
    else:  # SQLite stores a date as ISO text
        week = "date(created_at, 'weekday 0', '-6 days')"
    figures = [
        ("filed", "0", None),
        ("resolved", "0", "resolved_at IS NOT NULL"),
        ("sla_met", "CAST(sla_met AS INTEGER)", "sla_met IS NOT NULL"),
        *(
            (column, bucket_column(column), f"{bucket_column(column)} IS NOT NULL")
            for column in MEASURE_COLUMNS
        ),
    ]
    splits = {
        "figure_rollups": (["kind", "console_type"], ["kind", "console_type"]),
        "agent_rollups": ([f"coalesce(agent_id, {NO_AGENT})"], ["agent_id"]),
    }
    for table, (split, names) in splits.items():
        parts = []
        for figure, bucket, where in figures:
            # A constant bucket is left out of GROUP BY, where a number names a column.
            grouped = [week, *split] + ([] if bucket.isdigit() else [bucket])
            parts.append(
                f"SELECT '{figure}', {week}, {', '.join(split)}, {bucket}, count(*) "
                "FROM request_figures"
                + (f" WHERE {where}" if where else "")
                + f" GROUP BY {', '.join(grouped)}"
            )
        columns = ", ".join(["figure", "week", *names, "bucket", "count"])
        op.execute(f"INSERT INTO {table} ({columns}) " + " UNION ALL ".join(parts))


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in MEASURE_COLUMNS:
            op.drop_index(f"ix_request_figures_{bucket_column(column)}", "request_figures")
    op.drop_table('agent_rollups')
    op.drop_table('figure_rollups')
