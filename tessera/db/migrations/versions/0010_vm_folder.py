"""a VM's folder in its pool

Revision ID: 0010
Revises: 0009

The vSphere folder a VM sits in ("/DC0/vm/web"), read by the sync and the change feed,
so unmanaged VMs can be listed and adopted folder by folder. Existing rows get an empty
folder until the next full sync of their pool fills it in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vms") as batch_op:
        batch_op.add_column(
            sa.Column("folder", sa.String(length=1024), nullable=False, server_default="")
        )
        batch_op.create_index("ix_vms_folder_name", ["folder", "name", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vms") as batch_op:
        batch_op.drop_index("ix_vms_folder_name")
        batch_op.drop_column("folder")
