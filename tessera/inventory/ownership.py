"""Which project owns a VM. A VM made through the API belongs to its creator's project
from the start; one a sync discovers belongs to none (the platform's, seen by admins
only) until an admin adopts it into a project here."""

from __future__ import annotations

from tessera.db.rows import ProjectRow, VMRow
from tessera.domain.events import ChangeKind, EventDraft, inventory_kind
from tessera.domain.inventory import ObjectKind
from tessera.errors import NotFoundError
from tessera.events.recorder import record
from tessera.runtime import Runtime


def assign_project(rt: Runtime, vm_id: str, project_id: str | None, *, actor: str) -> None:
    """Give a VM to `project_id` (None: back to the platform), with its `vm.changed`
    event, which the new owner reads (the former one's history stays theirs). Nothing on
    the pool changes; again changes nothing."""
    with rt.sessions.begin() as session:
        vm = session.get(VMRow, vm_id)
        if vm is None:
            raise NotFoundError(f"VM {vm_id} not found")
        if project_id is not None and session.get(ProjectRow, project_id) is None:
            raise NotFoundError(f"project {project_id} not found")
        if vm.project_id == project_id:
            return
        record(
            session,
            EventDraft(
                kind=inventory_kind(ObjectKind.VM, ChangeKind.CHANGED),
                actor=actor,
                object_kind=ObjectKind.VM.value,
                object_id=vm.id,
                object_name=vm.name,
                provider_id=vm.provider_id,
                project_id=project_id,
                before={"project_id": vm.project_id},
                after={"project_id": project_id},
            ),
        )
        vm.project_id = project_id
