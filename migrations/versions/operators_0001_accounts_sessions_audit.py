"""operators: console operator accounts, sessions and the append-only audit log

Revision ID: operators_0001
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = 'operators_0001'
down_revision = '0001'
branch_labels = ('operators',)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('totp_secret', sa.String(length=64), nullable=True),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('operator_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', BigId, nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('audit_entries',
    sa.Column('id', BigId, autoincrement=True, nullable=False),
    sa.Column('operator_id', sa.BigInteger(), nullable=False),
    sa.Column('operator_name', sa.String(length=64), nullable=False),
    sa.Column('operator_role', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('before_json', sa.Text(), nullable=False),
    sa.Column('after_json', sa.Text(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_entries_target', 'audit_entries', ['target', 'id'])
    op.create_index('ix_audit_entries_action', 'audit_entries', ['action', 'id'])


def downgrade() -> None:
    op.drop_table('audit_entries')
    op.drop_table('operator_sessions')
    op.drop_table('operators')
