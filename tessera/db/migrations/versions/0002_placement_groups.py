"""placement groups

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "placement_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "placement_group_members",
        sa.Column("group_id", sa.String(length=36), nullable=False),
        sa.Column("vm_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["placement_groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vm_id"], ["vms.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "vm_id"),
    )
    with op.batch_alter_table("placement_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_placement_group_members_vm_id"), ["vm_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("placement_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_group_members_vm_id"))
    op.drop_table("placement_group_members")
    op.drop_table("placement_groups")
