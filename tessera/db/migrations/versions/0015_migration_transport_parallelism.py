"""datastore mounts of a pool; parallelism of a migration plan

Revision ID: 0015
Revises: 0014

`providers.datastore_mounts`: for a vSphere pool, datastores that the conversion host
also reaches as a local mount (NFS datastores), by datastore name; null where none is.
`migration_plans.parallelism`: how many of the plan's VMs migrate at once (1 keeps
the earlier behaviour). Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("datastore_mounts", sa.JSON(), nullable=True))
    with op.batch_alter_table("migration_plans") as batch:
        batch.add_column(sa.Column("parallelism", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("migration_plans") as batch:
        batch.drop_column("parallelism")
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("datastore_mounts")
