"""durable tasks and VM locks

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("requester", sa.String(length=128), nullable=False),
        sa.Column("provider_id", sa.String(length=36), nullable=True),
        sa.Column("vm_id", sa.String(length=36), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["provider_id"], ["providers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index("ix_tasks_created_id", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_state_created", ["state", "created_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_kind_created", ["kind", "created_at", "id"], unique=False)
    op.create_table(
        "vm_locks",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("vm_locks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vm_locks_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vm_locks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vm_locks_task_id"))
    op.drop_table("vm_locks")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_kind_created")
        batch_op.drop_index("ix_tasks_state_created")
        batch_op.drop_index("ix_tasks_created_id")
    op.drop_table("tasks")
