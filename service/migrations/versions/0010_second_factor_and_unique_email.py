"""second factors, recovery codes, and one user per e-mail address

Users may add an authenticator app (TOTP) as a second factor: `second_factors` holds its
secret (encrypted by the application) and the last time step used; `recovery_codes` holds
the digests of the single-use codes that stand in for it.

Single sign-on finds a person by e-mail address, case-insensitively, so an address now
belongs to one user at most: addresses are stored trimmed and lower-case, blank ones become
NULL, and a unique index holds them. When two users already share an address the migration
stops, naming them, and changes nothing: which of them keeps it is for an administrator.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 22:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    shared = bind.execute(
        sa.text(
            "SELECT lower(trim(email)) AS address, count(*) FROM users "
            "WHERE email IS NOT NULL AND trim(email) <> '' "
            "GROUP BY lower(trim(email)) HAVING count(*) > 1 ORDER BY address"
        )
    ).all()
    if shared:
        listed = ", ".join(f"{address} ({count} users)" for address, count in shared)
        raise RuntimeError(
            "Users share e-mail addresses, which must now be unique (case-insensitively): "
            f"{listed}. Give each user an address of their own, then migrate again."
        )
    op.execute(
        "UPDATE users SET email = CASE WHEN trim(email) = '' THEN NULL "
        "ELSE lower(trim(email)) END WHERE email IS NOT NULL"
    )
    op.create_index(op.f("ix_users_email"), "users", ["email"], unique=True)

    op.create_table(
        "second_factors",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_second_factors_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_second_factors")),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("digest", name=op.f("uq_recovery_codes_digest")),
    )
    op.create_index(
        op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"], unique=False
    )


def downgrade():
    op.drop_index(op.f("ix_recovery_codes_user_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_table("second_factors")
    # The addresses stay lower-case: the case they were typed in is not kept.
    op.drop_index(op.f("ix_users_email"), table_name="users")
