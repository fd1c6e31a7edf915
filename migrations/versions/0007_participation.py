"""participation: reactions, questions and votes, mentions, search, private notes, last seen

Revision ID: 0007
Revises: 0003
Reactions and question votes (a table each), questions and mentions on messages, private
notes between a participant and the host, the seat's last seen message, and full-text search:
on PostgreSQL a GIN index on to_tsvector(search_config, body) (each message keeps the
configuration it was indexed with, the room's language, 'simple' by default); on SQLite an
FTS5 table kept by triggers. Both are built for the messages already there.

SQLite drops a table's triggers with the table: a later migration that rebuilds ``messages``
in batch mode must create the three ``messages_fts_*`` triggers again (see ``_sqlite_fts``).

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


FTS_TRIGGERS = {
    "messages_fts_ai": "AFTER INSERT ON messages BEGIN"
    " INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END",
    "messages_fts_ad": "AFTER DELETE ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body); END",
    "messages_fts_au": "AFTER UPDATE OF body ON messages BEGIN"
    " INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body);"
    " INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END",
}


def _sqlite_fts():
    op.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    for name, body in FTS_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    config_type = postgresql.REGCONFIG() if postgres else sa.String(length=32)

    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('search_language', sa.String(length=32), server_default='simple', nullable=False))

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_seq', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('question', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('mentions', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('search_config', config_type, server_default='simple', nullable=False))

    op.create_table('reactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('emoji', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_reactions_membership_id_memberships'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_reactions_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reactions')),
    sa.UniqueConstraint('message_id', 'membership_id', 'emoji', name='uq_reactions_once')
    )
    with op.batch_alter_table('reactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reactions_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reactions_membership_id'), ['membership_id'], unique=False)

    op.create_table('votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_votes_membership_id_memberships'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_votes_message_id_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes')),
    sa.UniqueConstraint('message_id', 'membership_id', name='uq_votes_once')
    )
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_votes_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_votes_membership_id'), ['membership_id'], unique=False)

    op.create_table('notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('room_id', sa.Integer(), nullable=False),
    sa.Column('membership_id', sa.Integer(), nullable=False),
    sa.Column('from_host', sa.Boolean(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['membership_id'], ['memberships.id'], name=op.f('fk_notes_membership_id_memberships'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['room_id'], ['rooms.id'], name=op.f('fk_notes_room_id_rooms'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notes'))
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notes_room_id'), ['room_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notes_membership_id'), ['membership_id'], unique=False)

    if postgres:
        op.create_index(
            'ix_messages_search', 'messages', [sa.text('to_tsvector(search_config, body)')], postgresql_using='gin'
        )
    else:
        _sqlite_fts()


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_messages_search', table_name='messages')
    else:
        for name in FTS_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")

    op.drop_table('notes')
    op.drop_table('votes')
    op.drop_table('reactions')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('search_config')
        batch_op.drop_column('mentions')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('question')

    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_column('last_seen_seq')

    with op.batch_alter_table('rooms', schema=None) as batch_op:
        batch_op.drop_column('search_language')
