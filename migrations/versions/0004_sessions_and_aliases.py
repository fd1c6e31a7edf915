"""aliases held by active seats only; one sign-in per browser

Revision ID: 0004
Revises: 0003
An alias is unique among a room's active memberships only (a partial unique index), so
leaving or removal frees it; a membership records whether the host closed it. Each
browser's sign-in is a row, so signing out ends that browser's session alone.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACTIVE = sa.text("left_at IS NULL")


def upgrade():
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_constraint("uq_memberships_room_alias", type_="unique")
    op.execute("UPDATE memberships SET removed = banned")
    op.create_index(
        "uq_memberships_room_alias_active",
        "memberships",
        ["room_id", "alias_key"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )

    op.create_table(
        "login_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("facilitator_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["facilitator_id"],
            ["facilitators.id"],
            name=op.f("fk_login_sessions_facilitator_id_facilitators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_sessions")),
        sa.UniqueConstraint("token", name=op.f("uq_login_sessions_token")),
    )
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_login_sessions_facilitator_id"), ["facilitator_id"], unique=False)


def downgrade():
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_sessions_facilitator_id"))
    op.drop_table("login_sessions")

    # Going back to one alias per room for good: rename the inactive duplicates out of the way first.
    op.execute(
        "UPDATE memberships SET alias_key = substr(alias_key, 1, 50) || '#' || id WHERE left_at IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM memberships AS other WHERE other.room_id = memberships.room_id"
        " AND other.alias_key = memberships.alias_key AND other.id <> memberships.id)"
    )
    op.drop_index("uq_memberships_room_alias_active", table_name="memberships")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_memberships_room_alias", ["room_id", "alias_key"])
        batch_op.drop_column("removed")
