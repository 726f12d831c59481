"""Tags: Tessera's own labels on VMs (as Nova's server tags), never written to a pool, so
a sync leaves them alone. `vm_tags` indexes them for filters; `vms.tags` keeps a sorted
copy for reading a page of VMs without a join."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from tessera.db.rows import VMRow, VMTagRow
from tessera.domain.events import ChangeKind, EventDraft, inventory_kind
from tessera.domain.inventory import ObjectKind
from tessera.errors import InvalidInputError, NotFoundError
from tessera.events.recorder import record
from tessera.identity.scope import PLATFORM, Scope
from tessera.runtime import Runtime


def change_tags(
    session: Session,
    vm: VMRow,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    actor: str,
    task_id: str | None = None,
) -> tuple[list[str], list[str]]:
    """Add and remove tags of one VM, with its `vm.changed` event; (before, after), both
    sorted. Adding a tag it has or removing one it lacks changes nothing."""
    before = sorted(vm.tags or [])
    after = sorted((set(before) | set(add)) - set(remove))
    if after == before:
        return before, after
    record(
        session,
        EventDraft(
            kind=inventory_kind(ObjectKind.VM, ChangeKind.CHANGED),
            actor=actor,
            object_kind=ObjectKind.VM.value,
            object_id=vm.id,
            object_name=vm.name,
            provider_id=vm.provider_id,
            task_id=task_id,
            project_id=vm.project_id,
            before={"tags": before},
            after={"tags": after},
        ),
    )
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    if gone:
        session.execute(delete(VMTagRow).where(VMTagRow.vm_id == vm.id, VMTagRow.tag.in_(gone)))
    if new:
        session.execute(insert(VMTagRow), [{"vm_id": vm.id, "tag": tag} for tag in new])
    vm.tags = after
    return before, after


def update_vm_tags(
    rt: Runtime,
    vm_id: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    actor: str,
    scope: Scope = PLATFORM,
) -> list[str]:
    """Add and remove tags of one VM in `scope` now (no task: nothing on a pool changes);
    its tags."""
    add, remove = list(add), list(remove)
    clash = sorted(set(add) & set(remove))
    if clash:
        raise InvalidInputError(f"tag(s) both added and removed: {', '.join(clash)}")
    with rt.sessions.begin() as session:
        vm = session.get(VMRow, vm_id)
        if vm is None or not scope.sees(vm.project_id):
            raise NotFoundError(f"VM {vm_id} not found")
        return change_tags(session, vm, add=add, remove=remove, actor=actor)[1]
