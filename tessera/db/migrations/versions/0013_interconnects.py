"""interconnects between regions

Revision ID: 0013
Revises: 0012

Routed (BGP, OSPF) and VPN (IPsec, GRE) interconnects between two regions' gateway
routers (tessera.network.interconnect). Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interconnects",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("region_a_id", sa.String(length=36), nullable=False),
        sa.Column("region_b_id", sa.String(length=36), nullable=False),
        sa.Column("side_a", sa.JSON(), nullable=False),
        sa.Column("side_b", sa.JSON(), nullable=False),
        sa.Column("ospf_area", sa.String(length=16), nullable=True),
        sa.Column("range_ids", sa.JSON(), nullable=False),
        sa.Column("psk_secret", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["region_a_id"], ["regions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["region_b_id"], ["regions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("interconnects")
