"""catalog pull requests (pending catalog changes)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('catalog_pull_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model_id', sa.String(length=256), nullable=False),
    sa.Column('repo', sa.String(length=256), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=1024), nullable=False),
    sa.Column('html_url', sa.String(length=1024), nullable=False),
    sa.Column('branch', sa.String(length=256), nullable=False),
    sa.Column('base', sa.String(length=256), nullable=False),
    sa.Column('file', sa.String(length=512), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('actor', sa.String(length=256), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_pull_requests'))
    )
    with op.batch_alter_table('catalog_pull_requests', schema=None) as batch_op:
        batch_op.create_index('ix_catalog_pull_requests_state', ['state'], unique=False)
        batch_op.create_index('ix_catalog_pull_requests_model_id', ['model_id'], unique=False)


def downgrade():
    with op.batch_alter_table('catalog_pull_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_catalog_pull_requests_model_id')
        batch_op.drop_index('ix_catalog_pull_requests_state')
    op.drop_table('catalog_pull_requests')
