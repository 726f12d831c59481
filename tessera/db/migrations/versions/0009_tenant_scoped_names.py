"""tenant-scoped placement group names; events indexed per project

Revision ID: 0009
Revises: 0008

A placement group's name was unique across the platform, so one project's name blocked
another's (and a 409 told that it existed elsewhere). It is now unique within a project;
the platform's own groups (no project) keep a partial unique index of their own, since
NULLs never collide in a unique index on SQLite or PostgreSQL.

Project-scoped event lists filter on project_id and page by id: (project_id, id) serves
them as one range scan, and replaces the index on project_id alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# 0002 left the unique constraint on placement_groups.name unnamed: PostgreSQL named it
# itself, SQLite did not, and batch mode finds it there under this convention's name.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
PLATFORM_ONLY = "project_id IS NULL"


def _global_name_constraint() -> str:
    found = sa.inspect(op.get_bind()).get_unique_constraints("placement_groups")
    name = next(uc["name"] for uc in found if uc["column_names"] == ["name"])
    return name or "uq_placement_groups_name"


def upgrade() -> None:
    unique_name = _global_name_constraint()
    with op.batch_alter_table("placement_groups", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(unique_name, type_="unique")
        batch_op.drop_index("ix_placement_groups_project_id")
        batch_op.create_index(
            "uq_placement_groups_project_name", ["project_id", "name"], unique=True
        )
        batch_op.create_index(
            "uq_placement_groups_platform_name",
            ["name"],
            unique=True,
            sqlite_where=sa.text(PLATFORM_ONLY),
            postgresql_where=sa.text(PLATFORM_ONLY),
        )

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_project_id")
        batch_op.create_index("ix_events_project", ["project_id", "id"], unique=False)


def downgrade() -> None:
    """Fails while two projects hold groups of one name: rename one first."""
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_project")
        batch_op.create_index("ix_events_project_id", ["project_id"], unique=False)

    with op.batch_alter_table("placement_groups", schema=None) as batch_op:
        batch_op.drop_index("uq_placement_groups_platform_name")
        batch_op.drop_index("uq_placement_groups_project_name")
        batch_op.create_index("ix_placement_groups_project_id", ["project_id"], unique=False)
        batch_op.create_unique_constraint("uq_placement_groups_name", ["name"])
