"""duration buckets stored beside the durations

Each duration of `request_figures` gets a column holding its bucket number, so SQLite's
percentile statements name a column instead of repeating the long bucket expression (whose
parsing cost more than the counting). The bucket indexes move from the expression to the
column.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:45:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


# The duration columns of `request_figures` and their buckets' upper bounds (seconds,
# exclusive) when this migration was written, frozen here: a later change to the live ones
# (domain.durations) must not change what it builds.
MEASURE_COLUMNS = (
    "first_response_seconds",
    "first_response_business_seconds",
    "resolution_seconds",
    "resolution_business_seconds",
    "customer_wait_seconds",
    "customer_wait_business_seconds",
)
BUCKET_BOUNDS = (
    1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 15, 18, 22, 27, 32, 38, 46, 55, 66, 79, 95, 114, 137, 165,
    198, 237, 285, 342, 410, 492, 591, 709, 851, 1021, 1225, 1470, 1764, 2116, 2540, 3048, 3657,
    4389, 5266, 6320, 7584, 9100, 10921, 13105, 15726, 18871, 22645, 27174, 32609, 39130, 46956,
    56348, 67617, 81140, 97369, 116842, 140211, 168253, 201903, 242284, 290741, 348889, 418667,
    502400, 602880, 723456, 868147, 1041777, 1250132, 1500159, 1800190, 2160228, 2592274,
    3110729, 3732875, 4479450, 5375340, 6450408, 7740489,
)


def duration_bucket_sql(column):
    """A duration column's bucket number as an SQL expression: 0 for zero or less, i for the
    values below BUCKET_BOUNDS[i - 1] not in an earlier bucket, the last bucket for the rest."""
    cases = " ".join(
        f"WHEN {column} < {bound} THEN {i}" for i, bound in enumerate(BUCKET_BOUNDS, start=1)
    )
    return f"CASE WHEN {column} <= 0 THEN 0 {cases} ELSE {len(BUCKET_BOUNDS) + 1} END"


def bucket_column(measure_column):
    """The column holding a duration's bucket: `resolution_seconds` -> `resolution_bucket`."""
    return measure_column.removesuffix("_seconds") + "_bucket"


def _index(column):
    return f"ix_request_figures_{bucket_column(column)}"


def upgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for column in MEASURE_COLUMNS:  # the expression indexes of 0003, named alike
            op.drop_index(_index(column), "request_figures")
    for column in MEASURE_COLUMNS:
        op.add_column("request_figures", sa.Column(bucket_column(column), sa.SmallInteger(), nullable=True))
    assignments = ", ".join(f"{bucket_column(c)} = {duration_bucket_sql(c)}" for c in MEASURE_COLUMNS)
    op.execute(f"UPDATE request_figures SET {assignments}")
    if sqlite:
        for column in MEASURE_COLUMNS:
            bucket = bucket_column(column)
            op.create_index(
                _index(column),
                "request_figures",
                [bucket, "created_at", column, "kind", "console_type", "agent_id"],
                sqlite_where=sa.text(f"{bucket} IS NOT NULL"),
            )


def downgrade():
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for column in MEASURE_COLUMNS:
            op.drop_index(_index(column), "request_figures")
    with op.batch_alter_table("request_figures", schema=None) as batch_op:
        for column in MEASURE_COLUMNS:
            batch_op.drop_column(bucket_column(column))
    if sqlite:
        for column in MEASURE_COLUMNS:
            op.create_index(
                _index(column),
                "request_figures",
                [sa.text(duration_bucket_sql(column)), "created_at", column, "kind", "console_type", "agent_id"],
                sqlite_where=sa.text(f"{column} IS NOT NULL"),
            )
