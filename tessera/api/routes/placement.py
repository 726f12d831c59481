"""Placement: dry runs of the scheduler, and affinity / anti-affinity groups."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response, status

from tessera.api.deps import RuntimeDep, ScopeDep, SessionDep
from tessera.api.schemas import (
    ErrorBody,
    PlacementDecision,
    PlacementDryRun,
    PlacementGroupCreate,
    PlacementGroupPublic,
)
from tessera.scheduler import service
from tessera.scheduler.model import Candidate, GroupPolicy, Strategy
from tessera.scheduler.scheduler import Decision

router = APIRouter(prefix="/v1", tags=["placement"])

_GROUP_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such placement group or VM."},
}


def _candidate(c: Candidate) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "kind": c.kind.value,
        "provider_id": c.provider_id,
        "provider_name": c.provider_name,
        "provider_kind": c.provider_kind,
        "zone_id": c.zone,
        "zone": c.zone_name,
        "hosts": c.hosts,
        "cpu_cores": c.cpu_cores,
        "vcpus_used": c.vcpus_used,
        "memory_mib": c.memory_mib,
        "memory_mib_used": c.memory_mib_used,
        "in_maintenance": c.in_maintenance,
        "connected": c.connected,
    }


def decision_response(decision: Decision) -> Response:
    """A decision as the PlacementDecision body; orjson, as a dry run over a large estate
    lists thousands of candidates."""
    return Response(orjson.dumps(_decision(decision)), media_type="application/json")


def _decision(decision: Decision) -> dict[str, Any]:
    store = decision.datastore
    return {
        "summary": decision.summary,
        "chosen": _candidate(decision.chosen) if decision.chosen else None,
        "datastore": {
            "id": store.id,
            "name": store.name,
            "capacity_bytes": store.capacity_bytes,
            "free_bytes": store.free_bytes,
        }
        if store
        else None,
        "ranked": [
            {**_candidate(c), "score": round(score, 6)}
            for c, score in zip(decision.ranked, decision.scores, strict=True)
        ],
        "rejected": [
            {
                **_candidate(r.candidate),
                "reasons": [{"filter": f.filter, "reason": f.reason} for f in r.reasons],
            }
            for r in decision.rejected
        ],
        "rejected_by": decision.rejected_by,
    }


@router.post(
    "/placement/dry-run",
    response_model=PlacementDecision,
    responses={
        422: {
            "model": ErrorBody,
            "description": "Invalid sizes, or an unknown zone, pool, network, group or capability.",
        }
    },
)
def placement_dry_run(
    body: PlacementDryRun, session: SessionDep, rt: RuntimeDep, scope: ScopeDep
) -> Response:
    """Where a VM would go now and why every other candidate would not; nothing changes.
    A project's users are shown the candidates of the pools granted to them only."""
    spec = service.PlacementSpec(
        vcpus=body.vcpus,
        memory_mib=body.memory_mib,
        disk_gib=body.disk_gib,
        zone=body.zone,
        provider=body.provider,
        capabilities=tuple(body.capabilities),
        networks=tuple(body.networks),
        group=body.group,
        strategy=Strategy(body.strategy),
        cpu_allocation_ratio=body.cpu_allocation_ratio,
        ram_allocation_ratio=body.ram_allocation_ratio,
        disk_allocation_ratio=body.disk_allocation_ratio,
        exclude=tuple(body.exclude),
    )
    return decision_response(service.dry_run(session, rt.settings, spec, scope=scope))


def _group(view: service.GroupView) -> PlacementGroupPublic:
    return PlacementGroupPublic(
        id=view.id,
        name=view.name,
        policy=view.policy.value,
        members=view.members,
        created_at=view.created_at,
    )


@router.get("/placement-groups", response_model=list[PlacementGroupPublic])
def list_placement_groups(session: SessionDep, scope: ScopeDep) -> list[PlacementGroupPublic]:
    return [_group(view) for view in service.list_groups(session, scope)]


@router.post(
    "/placement-groups",
    status_code=status.HTTP_201_CREATED,
    response_model=PlacementGroupPublic,
    responses={409: {"model": ErrorBody, "description": "The name is taken."}},
)
def create_placement_group(
    body: PlacementGroupCreate, rt: RuntimeDep, scope: ScopeDep
) -> PlacementGroupPublic:
    """A group of the caller's project."""
    policy = GroupPolicy(body.policy)
    return _group(service.create_group(rt, body.name, policy, project_id=scope.project_id))


@router.get(
    "/placement-groups/{group_id}", response_model=PlacementGroupPublic, responses=_GROUP_ERRORS
)
def show_placement_group(
    group_id: str, session: SessionDep, scope: ScopeDep
) -> PlacementGroupPublic:
    """One group, by id or name."""
    return _group(service.get_group(session, group_id, scope))


@router.delete(
    "/placement-groups/{group_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_GROUP_ERRORS,
)
def delete_placement_group(group_id: str, rt: RuntimeDep, scope: ScopeDep) -> Response:
    """Forget a group; its VMs are not touched."""
    service.delete_group(rt, group_id, scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/placement-groups/{group_id}/members/{vm_id}",
    response_model=PlacementGroupPublic,
    responses=_GROUP_ERRORS,
)
def add_placement_group_member(
    group_id: str, vm_id: str, rt: RuntimeDep, scope: ScopeDep
) -> PlacementGroupPublic:
    """Put a VM in the group (again is fine); it constrains the next placements."""
    return _group(service.add_member(rt, group_id, vm_id, scope=scope))


@router.delete(
    "/placement-groups/{group_id}/members/{vm_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_GROUP_ERRORS,
)
def remove_placement_group_member(
    group_id: str, vm_id: str, rt: RuntimeDep, scope: ScopeDep
) -> Response:
    service.remove_member(rt, group_id, vm_id, scope=scope)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
