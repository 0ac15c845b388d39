"""queue index: the tasks' state and type index also holds who may not take a task

An agent's queue leaves out the second approval of a request the agent approved first
(`tasks.excluded_user_id`); with that column in the index, the queue's count still reads the
index alone.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 06:45:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index("ix_tasks_state_type", "tasks")
    op.create_index("ix_tasks_state_type", "tasks", ["state", "type", "excluded_user_id"])


def downgrade():
    op.drop_index("ix_tasks_state_type", "tasks")
    op.create_index("ix_tasks_state_type", "tasks", ["state", "type"])
