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

from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket_sql


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


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
