"""bulk tasks: a parent per bulk request, an item per VM; tasks found by their VM

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_tasks_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_tasks_vm_id"), ["vm_id"], unique=False)
    op.create_table(
        "task_items",
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("vm_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("vm_name", sa.String(length=256), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("child_task_id", sa.String(length=36), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("task_id", "vm_id"),
    )
    with op.batch_alter_table("task_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_items_child_task_id"), ["child_task_id"], unique=False
        )
        batch_op.create_index("ix_task_items_order", ["task_id", "position"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_items", schema=None) as batch_op:
        batch_op.drop_index("ix_task_items_order")
        batch_op.drop_index(batch_op.f("ix_task_items_child_task_id"))
    op.drop_table("task_items")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasks_vm_id"))
        batch_op.drop_index(batch_op.f("ix_tasks_parent_id"))
        batch_op.drop_column("parent_id")
