"""Migration plans: CRUD while draft, readiness, start, cancel, resume, rollback and
progress. Long work answers 202 with the plan's task (see tessera.migration)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tessera.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tessera.api.migration_schemas import (
    DiskProgress,
    MigrationPlanCreate,
    MigrationPlanPublic,
    MigrationPlanUpdate,
    MigrationVMPublic,
)
from tessera.api.routes.tasks import to_public as task_public
from tessera.api.schemas import ErrorBody, TaskPublic
from tessera.db.rows import MigrationPlanRow
from tessera.migration import service
from tessera.migration.model import MigrationMode, PlanState, TargetFormat

router = APIRouter(prefix="/v1/migration-plans", tags=["migration"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such plan, provider, VM, network or datastore."},
    409: {"model": ErrorBody, "description": "The plan's state forbids it, or it is not ready."},
}


def _public(session: Session, plan: MigrationPlanRow) -> MigrationPlanPublic:
    return MigrationPlanPublic(
        id=plan.id,
        name=plan.name,
        state=PlanState(plan.state),
        source_provider_id=plan.source_provider_id,
        target_provider_id=plan.target_provider_id,
        network_map=dict(plan.network_map),
        storage_map=dict(plan.storage_map),
        target_format=TargetFormat(plan.target_format),
        mode=MigrationMode(plan.mode),
        schedule_at=plan.schedule_at,
        parallelism=plan.parallelism,
        task_id=plan.task_id,
        created_by=plan.created_by,
        created_at=plan.created_at,
        updated_at=plan.updated_at,
        readiness=plan.readiness,
        vms=[
            MigrationVMPublic(
                vm_id=vm.vm_id,
                name=vm.vm_name,
                position=vm.position,
                state=vm.state,
                phase=vm.phase,
                phases=dict(vm.phases),
                disks=[DiskProgress.model_validate(d) for d in vm.disks],
                target_native_id=vm.target_native_id,
                error=vm.error,
            )
            for vm in service.plan_vms(session, plan.id)
        ],
    )


def _input(body: MigrationPlanCreate | MigrationPlanUpdate) -> service.PlanInput:
    fields = body.model_dump(exclude_unset=True)
    return service.PlanInput(**fields)


@router.get("", response_model=list[MigrationPlanPublic])
def list_migration_plans(session: SessionDep) -> list[MigrationPlanPublic]:
    return [_public(session, plan) for plan in service.list_plans(session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MigrationPlanPublic,
    responses=_ERRORS,
)
def create_migration_plan(
    body: MigrationPlanCreate, rt: RuntimeDep, session: SessionDep, principal: PrincipalDep
) -> MigrationPlanPublic:
    plan = service.create_plan(rt, _input(body), principal.user_name)
    return _public(session, service.get_plan(session, plan.id))


@router.get("/{plan_id}", response_model=MigrationPlanPublic, responses=_ERRORS)
def show_migration_plan(plan_id: str, session: SessionDep) -> MigrationPlanPublic:
    """The plan with each VM's phases and each disk's progress (bytes, MiB/s, ETA)."""
    return _public(session, service.get_plan(session, plan_id))


@router.patch("/{plan_id}", response_model=MigrationPlanPublic, responses=_ERRORS)
def update_migration_plan(
    plan_id: str, body: MigrationPlanUpdate, rt: RuntimeDep, session: SessionDep
) -> MigrationPlanPublic:
    plan = service.update_plan(rt, plan_id, _input(body))
    return _public(session, service.get_plan(session, plan.id))


@router.delete("/{plan_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
def delete_migration_plan(plan_id: str, rt: RuntimeDep) -> Response:
    service.delete_plan(rt, plan_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{plan_id}/readiness", responses=_ERRORS)
def check_migration_plan(plan_id: str, rt: RuntimeDep) -> dict[str, Any]:
    """Check every VM now (source config, disk headers, target host) and keep the report."""
    return service.readiness(rt, plan_id)


@router.post(
    "/{plan_id}/start",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def start_migration_plan(plan_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    """Readiness is checked again first: a blocking finding is 409 `plan_not_ready`."""
    return task_public(service.start_plan(rt, plan_id, principal.user_name))


@router.post(
    "/{plan_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def cancel_migration_plan(plan_id: str, rt: RuntimeDep) -> TaskPublic:
    return task_public(service.cancel_plan(rt, plan_id))


@router.post(
    "/{plan_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def resume_migration_plan(plan_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return task_public(service.resume_plan(rt, plan_id, principal.user_name))


@router.post(
    "/{plan_id}/rollback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskPublic,
    responses=_ERRORS,
)
def rollback_migration_plan(plan_id: str, rt: RuntimeDep, principal: PrincipalDep) -> TaskPublic:
    return task_public(service.rollback_plan(rt, plan_id, principal.user_name))
