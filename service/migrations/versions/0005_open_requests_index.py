"""open requests index: the backlog reads the open requests from an index of their own

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 02:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_requests_open",
        "requests",
        ["kind", "status", "sla_state", "created_at", "console_id"],
        sqlite_where=sa.text("open_key IS NOT NULL"),
        postgresql_where=sa.text("open_key IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # A database analysed before has no statistics for the new index; give it its own
        # (it holds the open requests only, so this reads little).
        op.execute("ANALYZE ix_requests_open")


def downgrade():
    op.drop_index("ix_requests_open", "requests")
