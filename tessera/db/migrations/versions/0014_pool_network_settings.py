"""network settings of a pool

Revision ID: 0014
Revises: 0013

Where Tessera reaches a KVM pool's switch (its OVS database) and its VXLAN endpoint:
a JSON column on providers, null for pools without any (tessera.network.poolsettings).
Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(sa.Column("network_settings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.drop_column("network_settings")
