"""sessions and two-factor sign-in

Revision ID: 0003
Revises: 0002
Login sessions that sign-out can revoke, and two-factor sign-in with recovery codes.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('facilitator_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['facilitator_id'], ['facilitators.id'], name=op.f('fk_recovery_codes_facilitator_id_facilitators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_facilitator_id'), ['facilitator_id'], unique=False)

    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_token', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))




def downgrade():

    with op.batch_alter_table('facilitators', schema=None) as batch_op:
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('session_token')

    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_facilitator_id'))

    op.drop_table('recovery_codes')

