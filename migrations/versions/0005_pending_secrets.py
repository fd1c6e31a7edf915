"""pending secrets: the two-factor set-up key and fresh recovery codes, out of the session cookie

Revision ID: 0005
Revises: 0003
The session cookie is signed, not encrypted; secrets waiting to be shown or confirmed
live here instead, under the SHA-256 of a random key the cookie carries.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('pending_secrets',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('facilitator_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['facilitator_id'], ['facilitators.id'], name=op.f('fk_pending_secrets_facilitator_id_facilitators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_secrets'))
    )
    with op.batch_alter_table('pending_secrets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_secrets_facilitator_id'), ['facilitator_id'], unique=False)


def downgrade():
    with op.batch_alter_table('pending_secrets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_secrets_facilitator_id'))

    op.drop_table('pending_secrets')
