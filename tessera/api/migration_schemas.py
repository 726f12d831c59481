"""API schemas of migration plans (tessera.migration): a family per entity, as schemas.py
has for the rest; kept apart so the migration capability stays in its own files."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tessera.migration.model import (
    MAX_PARALLELISM,
    MIN_PARALLELISM,
    MigrationMode,
    PlanState,
    TargetFormat,
)

_ID = Field(min_length=1, max_length=36)
_PARALLELISM_HELP = (
    "How many of the plan's VMs migrate at once; a VM that fails is rolled back and the "
    "others go on."
)


class MigrationPlanCreate(BaseModel):
    """A plan in Tessera ids: `network_map` maps a source network id to a target network
    id, `storage_map` a source datastore id to a target storage pool (datastore) id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    source_provider_id: str = _ID
    target_provider_id: str = _ID
    vm_ids: list[str] = Field(min_length=1, max_length=500)
    network_map: dict[str, str] = Field(default_factory=dict)
    storage_map: dict[str, str] = Field(default_factory=dict)
    target_format: TargetFormat = TargetFormat.QCOW2
    mode: MigrationMode = MigrationMode.COLD
    schedule_at: datetime | None = None
    parallelism: int = Field(
        default=1, ge=MIN_PARALLELISM, le=MAX_PARALLELISM, description=_PARALLELISM_HELP
    )


class MigrationPlanUpdate(BaseModel):
    """Fields to change on a draft plan; those left out stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    vm_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    network_map: dict[str, str] | None = None
    storage_map: dict[str, str] | None = None
    target_format: TargetFormat | None = None
    mode: MigrationMode | None = None
    schedule_at: datetime | None = None
    clear_schedule: bool = False
    parallelism: int | None = Field(
        default=None, ge=MIN_PARALLELISM, le=MAX_PARALLELISM, description=_PARALLELISM_HELP
    )


class DiskProgress(BaseModel):
    index: int
    ds_path: str
    volume: str
    format: str
    state: str
    total_bytes: int
    transfer_bytes: int
    done_bytes: int
    mib_s: float
    eta_s: float | None
    identical: bool | None = None
    rounds: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Warm mode: per copy round, the bytes and areas it copied and its "
        "seconds (round 0: the full copy); total/done bytes are the current round's.",
    )


class MigrationVMPublic(BaseModel):
    vm_id: str
    name: str
    position: int
    state: str
    phase: str | None
    phases: dict[str, Any]
    disks: list[DiskProgress]
    target_native_id: str | None
    error: str | None


class MigrationPlanPublic(BaseModel):
    id: str
    name: str
    state: PlanState
    source_provider_id: str | None
    target_provider_id: str | None
    network_map: dict[str, Any]
    storage_map: dict[str, Any]
    target_format: TargetFormat
    mode: MigrationMode
    schedule_at: datetime | None
    parallelism: int
    task_id: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    vms: list[MigrationVMPublic]
    readiness: dict[str, Any] | None = Field(
        description="The last readiness report: per VM its findings (blocking, warning, "
        "info), bytes to transfer and the estimated time."
    )
