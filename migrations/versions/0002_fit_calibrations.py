"""fit calibrations measured from vLLM start-up logs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "fit_calibrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gpu_profile", sa.String(length=128), nullable=False),
        sa.Column("vllm_version", sa.String(length=32), nullable=False),
        sa.Column("shape_key", sa.String(length=256), nullable=False),
        sa.Column("tensor_parallel", sa.Integer(), nullable=False),
        sa.Column("model_ref", sa.String(length=256), nullable=True),
        sa.Column("activation_gib", sa.Float(), nullable=False),
        sa.Column("non_torch_gib", sa.Float(), nullable=False),
        sa.Column("cuda_graph_gib", sa.Float(), nullable=True),
        sa.Column("kv_cache_gib", sa.Float(), nullable=True),
        sa.Column("kv_tokens", sa.Integer(), nullable=True),
        sa.Column("max_model_len", sa.Integer(), nullable=True),
        sa.Column("total_memory_gib", sa.Float(), nullable=True),
        sa.Column("log_format", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fit_calibrations")),
    )
    with op.batch_alter_table("fit_calibrations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fit_calibrations_key", ["gpu_profile", "vllm_version", "shape_key", "tensor_parallel"], unique=False
        )


def downgrade():
    with op.batch_alter_table("fit_calibrations", schema=None) as batch_op:
        batch_op.drop_index("ix_fit_calibrations_key")
    op.drop_table("fit_calibrations")
