"""migration plans and their VMs

Revision ID: 0012
Revises: 0011

VMware to KVM migration plans (tessera.migration): the plan with its network and storage
maps, and one row per source VM with its phases and per-disk progress. Nothing existing
changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "migration_plans",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("source_provider_id", sa.String(length=36), nullable=True),
        sa.Column("target_provider_id", sa.String(length=36), nullable=True),
        sa.Column("network_map", sa.JSON(), nullable=False),
        sa.Column("storage_map", sa.JSON(), nullable=False),
        sa.Column("target_format", sa.String(length=8), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("schedule_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("readiness", sa.JSON(), nullable=True),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_provider_id"], ["providers.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["target_provider_id"], ["providers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "migration_vms",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("plan_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.String(length=36), nullable=False),
        sa.Column("vm_name", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=True),
        sa.Column("phases", sa.JSON(), nullable=False),
        sa.Column("disks", sa.JSON(), nullable=False),
        sa.Column("target_native_id", sa.String(length=64), nullable=True),
        sa.Column("original_power", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["migration_plans.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "position"),
    )
    op.create_index("ix_migration_vms_plan_id", "migration_vms", ["plan_id"])


def downgrade() -> None:
    op.drop_index("ix_migration_vms_plan_id", table_name="migration_vms")
    op.drop_table("migration_vms")
    op.drop_table("migration_plans")
