"""Tags: Tessera's own labels on VMs (as Nova's server tags), never written to a pool, so
a sync leaves them alone. `vm_tags` indexes them for filters; `vms.tags` keeps a sorted
copy for reading a page of VMs without a join."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from tessera.db.rows import VMRow, VMTagRow


def change_tags(
    session: Session, vm: VMRow, *, add: Iterable[str] = (), remove: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Add and remove tags of one VM; (before, after), both sorted. Adding a tag it has
    or removing one it lacks changes nothing."""
    before = sorted(vm.tags or [])
    after = sorted((set(before) | set(add)) - set(remove))
    if after == before:
        return before, after
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    if gone:
        session.execute(delete(VMTagRow).where(VMTagRow.vm_id == vm.id, VMTagRow.tag.in_(gone)))
    if new:
        session.execute(insert(VMTagRow), [{"vm_id": vm.id, "tag": tag} for tag in new])
    vm.tags = after
    return before, after


def vm_tags(session: Session, vm_id: str) -> list[str]:
    return sorted(session.scalars(select(VMTagRow.tag).where(VMTagRow.vm_id == vm_id)))
