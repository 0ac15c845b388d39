"""audit log indexes: the audit log pages newest first by (at, id), with or without a filter

One index per filter of the audit log (actor, action, object type, object type and reference)
leads with the filtered columns and then holds the log's order, (at, id); the unfiltered log
and a date range read (at, id). The index on `at` alone is replaced by (at, id).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_events_at_id": ["at", "id"],
    "ix_audit_events_actor_at_id": ["actor", "at", "id"],
    "ix_audit_events_action_at_id": ["action", "at", "id"],
    "ix_audit_events_object_type_at_id": ["object_type", "at", "id"],
    "ix_audit_events_object_type_ref_at_id": ["object_type", "object_ref", "at", "id"],
}


def upgrade():
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    for name, columns in INDEXES.items():
        op.create_index(name, "audit_events", columns)


def downgrade():
    for name in INDEXES:
        op.drop_index(name, table_name="audit_events")
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
