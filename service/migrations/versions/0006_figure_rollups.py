"""figure rollups: weekly tallies of the turnaround figures; PostgreSQL gets the bucket indexes

The dashboard reads a range's whole weeks from `figure_rollups` (by kind and console type) or
`agent_rollups` (by agent) and only its part weeks from `request_figures` (service.metrics.rollups), and computes percentiles the same way on both databases,
so PostgreSQL now has the duration bucket indexes SQLite had since 0004.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 06:00:00

"""
from alembic import op
import sqlalchemy as sa

from domain.durations import MEASURE_COLUMNS, bucket_column


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _enum(name, values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade():
    from service.metrics import rollups

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
    rollups.rebuild(bind)
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


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for column in MEASURE_COLUMNS:
            op.drop_index(f"ix_request_figures_{bucket_column(column)}", "request_figures")
    op.drop_table('agent_rollups')
    op.drop_table('figure_rollups')
