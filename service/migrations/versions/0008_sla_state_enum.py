"""requests.sla_state: one of the SLA states, checked by the database

The column stores `domain.sla.SlaState` values as the other enum columns store theirs: a
VARCHAR(32) with a CHECK constraint naming the states. PostgreSQL alters the column and adds
the constraint. SQLite adds a CHECK only by re-creating the table; that is done here by
SQLite's own procedure for such changes, keeping every row, every index as it was (the open
requests' index with its WHERE clause), the planner's statistics and the IDs handed out so far.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# The SLA states when this migration was written, frozen here: a later change to the live
# ones (domain.sla) must not change what it builds.
SLA_STATES = ("ok", "at_risk", "breached", "paused", "met")
SLA_CHECK = "sla_state IN ({})".format(", ".join(f"'{state}'" for state in SLA_STATES))
CHECK_NAME = "ck_requests_sla_state"

# `requests` as 0002 created it, with the column `sla_state` left to fill in; on SQLite only.
REQUESTS_TABLE = """CREATE TABLE {name} (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    kind VARCHAR(32) NOT NULL,
    console_id INTEGER NOT NULL,
    instance_id INTEGER NOT NULL,
    requester_id INTEGER NOT NULL,
    reason TEXT NOT NULL,
    status VARCHAR(32) NOT NULL,
    open_key VARCHAR(80),
    steps JSON NOT NULL,
    outcome TEXT,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    resolved_at DATETIME,
    first_response_at DATETIME,
    first_response_due DATETIME,
    resolution_due DATETIME,
    sla_state {sla_state} NOT NULL,
    customer_wait_seconds FLOAT NOT NULL,
    projected_seq INTEGER NOT NULL,
    CONSTRAINT fk_requests_console_id_consoles FOREIGN KEY(console_id) REFERENCES consoles (id),
    CONSTRAINT fk_requests_instance_id_instances FOREIGN KEY(instance_id) REFERENCES instances (id),
    CONSTRAINT fk_requests_requester_id_users FOREIGN KEY(requester_id) REFERENCES users (id),
    CONSTRAINT uq_requests_open_key UNIQUE (open_key),
    CONSTRAINT ck_requests_request_kind CHECK (kind IN ('enable_access', 'establish_link', 'dissociate_link')),
    CONSTRAINT ck_requests_request_status CHECK (status IN ('submitted', 'awaiting_consent', 'awaiting_agent', 'in_review', 'awaiting_requester', 'awaiting_second_approval', 'applying', 'completed', 'rejected', 'cancelled', 'expired', 'no_action_needed', 'failed')){checks}
)"""
COLUMNS = (
    "id", "kind", "console_id", "instance_id", "requester_id", "reason", "status", "open_key",
    "steps", "outcome", "created_at", "updated_at", "resolved_at", "first_response_at",
    "first_response_due", "resolution_due", "sla_state", "customer_wait_seconds",
    "projected_seq",
)
# Every index of `requests` (0002, 0005): (name, columns, partial on).
INDEXES = (
    ("ix_requests_console_status", ["console_id", "status"], None),
    ("ix_requests_created_at", ["created_at"], None),
    ("ix_requests_instance_status", ["instance_id", "status"], None),
    ("ix_requests_status_created", ["status", "created_at"], None),
    ("ix_requests_open", ["kind", "status", "sla_state", "created_at", "console_id"], "open_key IS NOT NULL"),
)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_requests(
            REQUESTS_TABLE.format(
                name="_requests_new",
                sla_state="VARCHAR(32)",
                checks=f",\n    CONSTRAINT {CHECK_NAME} CHECK ({SLA_CHECK})",
            )
        )
        return
    op.alter_column(
        "requests",
        "sla_state",
        existing_type=sa.String(length=16),
        type_=sa.String(length=32),
        existing_nullable=False,
    )
    op.create_check_constraint(op.f(CHECK_NAME), "requests", sa.text(SLA_CHECK))


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_requests(
            REQUESTS_TABLE.format(name="_requests_new", sla_state="VARCHAR(16)", checks="")
        )
        return
    op.drop_constraint(op.f(CHECK_NAME), "requests", type_="check")
    op.alter_column(
        "requests",
        "sla_state",
        existing_type=sa.String(length=32),
        type_=sa.String(length=16),
        existing_nullable=False,
    )


def _rebuild_requests(create_new):
    """Replace `requests` on SQLite by the table `create_new` makes as `_requests_new`.

    SQLite's procedure: make the new table, copy the rows, drop the old table, give the new
    one its name, make the indexes again. Foreign keys must not be enforced meanwhile (the
    migration environment turns them off): dropping `requests` would otherwise delete, on
    cascade, the tasks, timelines, notifications and figures of every request.
    """
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError(
            "requests is re-created with foreign keys enforced: dropping it would delete the "
            "rows that refer to it; run the migrations with PRAGMA foreign_keys=OFF"
        )
    # Dropping the table forgets the last ID it handed out (AUTOINCREMENT: an ID, and so a
    # workflow ID, is never used twice) and the statistics of its indexes; both are kept.
    sequence = bind.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = 'requests'"
    ).scalar()
    analysed = bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).scalar()
    statistics = (
        bind.exec_driver_sql("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'requests'").all()
        if analysed
        else []
    )

    columns = ", ".join(COLUMNS)
    op.execute(create_new)
    op.execute(f"INSERT INTO _requests_new ({columns}) SELECT {columns} FROM requests")
    op.execute("DROP TABLE requests")
    op.execute("ALTER TABLE _requests_new RENAME TO requests")
    for name, indexed, where in INDEXES:
        op.create_index(
            name, "requests", indexed, sqlite_where=sa.text(where) if where is not None else None
        )

    if sequence is not None:
        op.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'requests'"))
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('requests', :seq)"),
            {"seq": sequence},
        )
    if statistics:
        op.execute(sa.text("DELETE FROM sqlite_stat1 WHERE tbl = 'requests'"))
        bind.execute(
            sa.text("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('requests', :idx, :stat)"),
            [{"idx": idx, "stat": stat} for idx, stat in statistics],
        )
