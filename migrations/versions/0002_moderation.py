"""moderation: edits, removals, pre-moderation, reports, audit log

Revision ID: 0002
Revises: 0001
Moderation: edits, removals, pre-moderation, reports, audit log, room settings.

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('detail', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_audit_events_room_id_rooms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_room_id'), ['room_id'], unique=False)

    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_reports_message_id_messages'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reporter_id'], ['memberships.id'], name=op.f('fk_reports_reporter_id_memberships'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_reports_room_id_rooms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports'))
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reports_room_id'), ['room_id'], unique=False)

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('banned', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), server_default='published', nullable=False))
        batch_op.add_column(sa.Column('rev', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('removed_by', sa.String(length=10), nullable=True))
        batch_op.alter_column('seq',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index('ix_messages_room_rev', ['room_id', 'rev'], unique=False)

    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_rev', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('slow_mode_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('premoderation', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('retention_days', sa.Integer(), nullable=True))




def downgrade():

    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.drop_column('retention_days')
        batch_op.drop_column('premoderation')
        batch_op.drop_column('slow_mode_seconds')
        batch_op.drop_column('locked')
        batch_op.drop_column('last_rev')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_room_rev')
        batch_op.alter_column('seq',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('removed_by')
        batch_op.drop_column('removed_at')
        batch_op.drop_column('edited_at')
        batch_op.drop_column('published_at')
        batch_op.drop_column('rev')
        batch_op.drop_column('status')

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('banned')

    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_room_id'))

    op.drop_table('reports')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_room_id'))

    op.drop_table('audit_events')

