"""API schemas: what goes over the wire, separate from DB rows and domain objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from tessera.domain.inventory import PowerState
from tessera.domain.tasks import PowerAction, TaskKind, TaskState

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


def _as_utc(value: datetime) -> datetime:
    """Times are stored in UTC, but SQLite hands them back without a zone: name it, so
    the JSON is an RFC 3339 date-time (with `Z`), as the schema's `date-time` promises."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: list[dict[str, object]] | None = None


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the pool.")
    kind: Literal["vsphere", "libvirt"]
    url: str = Field(min_length=3, max_length=512)
    username: str | None = Field(default=None, max_length=256)
    password: SecretStr | None = Field(default=None)
    verify_tls: bool = True
    region: str = Field(default="default", pattern=NAME_PATTERN)
    zone: str = Field(default="default", pattern=NAME_PATTERN)


class ProviderPublic(BaseModel):
    """A pool as the API shows it: never with its password. A project's users see a
    reduced view of the pools granted to them: how the platform reaches a pool (URL,
    user name, TLS setting, the endpoint's product, version and status message) is the
    platform's business, so those fields are null for them."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    url: str | None = Field(description="Platform admins only.")
    username: str | None = Field(description="Platform admins only.")
    verify_tls: bool | None = Field(description="Platform admins only.")
    region: str
    zone: str
    zone_id: str = Field(description="The zone's id, as grants name it.")
    status: Literal["ok", "unreachable", "error", "unknown"]
    status_message: str | None = Field(description="Platform admins only.")
    product: str | None = Field(description="Platform admins only.")
    version: str | None = Field(description="Platform admins only.")
    capabilities: dict[str, bool]
    created_at: UtcDateTime
    last_sync_at: UtcDateTime | None
    last_sync_ok_at: UtcDateTime | None
    last_sync_seconds: float | None
    inventory_age_s: float | None = Field(
        description="Seconds since the inventory was last read successfully."
    )
    network_settings: ProviderNetworkSettings | None = Field(
        default=None, description="Platform admins only: where Tessera reaches its switch."
    )
    datastore_mounts: dict[str, str] | None = Field(
        default=None,
        description="Platform admins only: a vSphere pool's datastores mounted on the "
        "conversion host (name -> folder); cold migrations read their disks there.",
    )


class ProviderNetworkSettings(BaseModel):
    """A KVM pool's network settings (tessera.network.poolsettings says what each is)."""

    model_config = ConfigDict(extra="forbid")

    ovsdb: str | None = Field(
        default=None,
        max_length=300,
        description="Its Open vSwitch database: unix:/path/db.sock or tcp:<host>:<port>.",
    )
    netns: str | None = Field(
        default=None, max_length=64, description="Its namespace here (a lab host): VXLAN."
    )
    vxlan_local_ip: str | None = Field(default=None, max_length=64)
    vxlan_group: str | None = Field(default=None, max_length=64)


class ProviderDatastoreMounts(BaseModel):
    """A vSphere pool's datastore mounts (tessera.inventory.datastore_mounts); the whole
    set is replaced, `{}` clears it."""

    model_config = ConfigDict(extra="forbid")

    mounts: dict[str, str] = Field(
        default_factory=dict,
        max_length=256,
        description="Datastore name -> absolute folder where this host mounts it.",
    )


class ProviderKind(BaseModel):
    kind: str
    capabilities: dict[str, bool]


class ClusterPublic(BaseModel):
    id: str
    provider_id: str
    name: str
    datacenter: str | None
    provider_name: str = Field(description="Its pool's name.")
    host_count: int
    cpu_cores: int = Field(description="Physical cores of its hosts.")
    cpu_ghz: float = Field(description="Cores times clock of its hosts.")
    memory_mib: int = Field(description="Memory of its hosts.")
    vcpus_used: int = Field(description="vCPUs of the VMs on its hosts (templates aside).")
    memory_mib_used: int = Field(description="Memory of the VMs on its hosts.")
    vm_count: int = Field(description="The caller's VMs on its hosts (every VM: an admin).")


class HostPublic(BaseModel):
    id: str
    provider_id: str
    name: str
    cluster_id: str | None
    cpu_cores: int
    cpu_mhz: int
    memory_mib: int
    in_maintenance: bool
    connected: bool
    hypervisor: str
    provider_name: str = Field(description="Its pool's name.")
    cluster_name: str | None
    state: Literal["connected", "maintenance", "disconnected"] = Field(
        description="disconnected before maintenance: a lost host's flag is stale."
    )
    cpu_ghz: float = Field(description="Cores times clock.")
    vcpus_used: int = Field(description="vCPUs of the VMs on it, powered on or off.")
    memory_mib_used: int = Field(description="Memory of the VMs on it, powered on or off.")
    vm_count: int = Field(description="The caller's VMs on it (every VM: an admin).")


class DatastorePublic(BaseModel):
    id: str
    provider_id: str
    name: str
    kind: str
    capacity_bytes: int
    free_bytes: int
    provider_name: str = Field(description="Its pool's name.")
    used_bytes: int
    host_count: int = Field(
        description="Hosts of its pool: the inventory does not record mounts, so every "
        "host of the pool counts (exact for a one-host KVM pool), as the scheduler assumes."
    )


class NetworkPublic(BaseModel):
    id: str
    provider_id: str
    name: str
    kind: str
    vlan_id: int | None
    provider_name: str = Field(description="Its pool's name.")
    host_count: int = Field(
        description="Hosts of its pool: the inventory does not record which hosts see "
        "a network, so every host of the pool counts, as the scheduler assumes."
    )


class DiskPublic(BaseModel):
    id: int
    position: int
    key: str
    label: str
    size_bytes: int
    datastore_id: str | None
    path: str
    format: str


class NicPublic(BaseModel):
    id: int
    position: int
    key: str
    mac: str
    network_id: str | None
    network_name: str
    model: str


class VMPublic(BaseModel):
    """A VM in a list; with ?fields= only the named fields (and id) are present."""

    id: str
    name: str | None = None
    power_state: PowerState | None = None
    cpu_count: int | None = None
    memory_mib: int | None = None
    guest_os: str | None = None
    provider_id: str | None = None
    host_id: str | None = None
    is_template: bool | None = None
    instance_uuid: str | None = None
    annotation: str | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    tags: list[str] | None = None
    project_id: str | None = None
    disks: list[DiskPublic] | None = None
    nics: list[NicPublic] | None = None


class VMDetail(BaseModel):
    id: str
    name: str
    power_state: PowerState
    cpu_count: int
    memory_mib: int
    guest_os: str
    provider_id: str
    host_id: str | None
    is_template: bool
    instance_uuid: str
    annotation: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    tags: list[str]
    project_id: str | None = Field(
        description="The project owning the VM; null for one no project has adopted yet."
    )
    disks: list[DiskPublic]
    nics: list[NicPublic]


class VMProjectAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str | None = Field(
        min_length=1,
        max_length=64,
        description="The project to own the VM; null gives it back to the platform.",
    )


class VMPage(BaseModel):
    items: list[VMPublic]
    next_cursor: str | None


class HostPage(BaseModel):
    items: list[HostPublic]
    next_cursor: str | None


class ClusterPage(BaseModel):
    items: list[ClusterPublic]
    next_cursor: str | None


class DatastorePage(BaseModel):
    items: list[DatastorePublic]
    next_cursor: str | None


class NetworkPage(BaseModel):
    items: list[NetworkPublic]
    next_cursor: str | None


class PlacementDryRun(BaseModel):
    """What to place; pools, zones and groups by name or id."""

    model_config = ConfigDict(extra="forbid")

    vcpus: int = Field(ge=1, le=4096)
    memory_mib: int = Field(ge=1, le=1 << 26)
    disk_gib: float = Field(default=0, ge=0, le=1 << 20)
    zone: str | None = Field(
        default=None, min_length=1, max_length=130, description="Zone name, region/zone, or id."
    )
    provider: str | None = Field(default=None, min_length=1, max_length=128)
    capabilities: list[str] = Field(
        default_factory=list, max_length=32, description="Flags every candidate must have."
    )
    networks: list[str] = Field(
        default_factory=list, max_length=64, description="Network ids to reach."
    )
    group: str | None = Field(default=None, min_length=1, max_length=128)
    strategy: Literal["spread", "pack"] = "spread"
    cpu_allocation_ratio: float | None = Field(default=None, gt=0, le=100)
    ram_allocation_ratio: float | None = Field(default=None, gt=0, le=100)
    disk_allocation_ratio: float | None = Field(default=None, gt=0, le=100)
    exclude: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Candidate ids not to consider, such as a migrating VM's current one.",
    )


class PlacementDatastore(BaseModel):
    id: str
    name: str
    capacity_bytes: int
    free_bytes: int


class PlacementCandidate(BaseModel):
    """A host, or a cluster (whose own scheduler, vSphere DRS, then picks the host)."""

    id: str
    name: str
    kind: Literal["host", "cluster"]
    provider_id: str
    provider_name: str
    provider_kind: str
    zone_id: str
    zone: str
    hosts: int
    cpu_cores: int
    vcpus_used: int
    memory_mib: int
    memory_mib_used: int
    in_maintenance: bool
    connected: bool


class RankedPlacementCandidate(PlacementCandidate):
    score: float = Field(description="Higher is better for the strategy, from 0 to 1.")


class PlacementReason(BaseModel):
    filter: str
    reason: str


class RejectedPlacementCandidate(PlacementCandidate):
    reasons: list[PlacementReason]


class PlacementDecision(BaseModel):
    summary: str
    chosen: PlacementCandidate | None
    datastore: PlacementDatastore | None
    ranked: list[RankedPlacementCandidate] = Field(description="Candidates that fit, best first.")
    rejected: list[RejectedPlacementCandidate]
    rejected_by: dict[str, int] = Field(description="Candidates each filter turned down.")


class PlacementGroupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    policy: Literal["affinity", "anti-affinity"]


class PlacementGroupPublic(BaseModel):
    id: str
    name: str
    policy: Literal["affinity", "anti-affinity"]
    members: list[str] = Field(description="Ids of the VMs in the group.")
    created_at: UtcDateTime


MAC_PATTERN = r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$"
VM_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"


class TaskStep(BaseModel):
    name: str
    state: Literal["pending", "running", "succeeded", "failed", "skipped"]
    started_at: UtcDateTime | None = None
    finished_at: UtcDateTime | None = None
    executor: str | None = Field(default=None, description="The worker that ran the step.")


class TaskError(BaseModel):
    code: str
    message: str


class TaskPublic(BaseModel):
    """A durable task: what it does, how far it got, and how it ended."""

    id: str
    kind: TaskKind
    state: TaskState
    progress: int = Field(ge=0, le=100, description="Percent of steps done.")
    steps: list[TaskStep]
    error: TaskError | None
    result: dict[str, object] | None
    requester: str
    provider_id: str | None
    vm_id: str | None
    cancel_requested: bool
    attempt: int
    executor_id: str | None = Field(
        description="The worker that ran its latest step; after a takeover, the new one."
    )
    parent_id: str | None = Field(
        default=None, description="The bulk task this task does one VM of."
    )
    project_id: str | None = Field(
        default=None, description="The project it runs for; null for the platform's own."
    )
    created_at: UtcDateTime
    updated_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None


class TaskPage(BaseModel):
    items: list[TaskPublic]
    next_cursor: str | None


class EventPublic(BaseModel):
    """Something that happened: a task's transition or a change in the inventory."""

    id: int
    at: UtcDateTime
    kind: str = Field(description="task.queued, vm.changed, provider.discovered, ...")
    actor: str = Field(description="Who: a user, or `sync` / `watch` for the pools' feeds.")
    object_kind: str = Field(description="task, vm, host, cluster, datastore, network, ...")
    object_id: str | None
    object_name: str = Field(description="Its name when the event happened.")
    provider_id: str | None
    task_id: str | None = Field(description="The task that made or asked for the change.")
    message: str
    before: dict[str, object] | None = Field(
        description="For a change, the fields that changed, as they were; for a removal, "
        "the object as it was last."
    )
    after: dict[str, object] | None = Field(
        description="The same fields afterwards; for an addition, the new object."
    )


class EventPage(BaseModel):
    items: list[EventPublic]
    next_cursor: str | None


class DiskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size_gib: int = Field(ge=1, le=65536)
    datastore_id: str | None = Field(default=None, min_length=1, max_length=64)


class NicCreate(BaseModel):
    """A NIC on a network of the VM's pool, on a Tessera segment realised there (a port
    is made for it), or on an unbound port of the caller's project (its MAC is used)."""

    model_config = ConfigDict(extra="forbid")

    network_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="A network of the VM's pool (GET /v1/networks) or a segment's id.",
    )
    port_id: str | None = Field(default=None, min_length=1, max_length=64)
    mac: str | None = Field(default=None, pattern=MAC_PATTERN)

    @model_validator(mode="after")
    def _one_target(self) -> NicCreate:
        if (self.network_id is None) == (self.port_id is None):
            raise ValueError("give network_id or port_id (one of them)")
        if self.port_id is not None and self.mac is not None:
            raise ValueError("a NIC on a port has the port's MAC: give no mac")
        return self


class VMCreate(BaseModel):
    """A blank VM. Without host_id and cluster_id the scheduler chooses the pool (within
    provider_id's when given), the host or DRS cluster and the datastore."""

    model_config = ConfigDict(extra="forbid")

    provider_id: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = Field(pattern=VM_NAME_PATTERN)
    cpus: int = Field(ge=1, le=256)
    memory_mib: int = Field(ge=16, le=4 * 1024 * 1024)
    disks: list[DiskCreate] = Field(default_factory=list, max_length=16)
    nics: list[NicCreate] = Field(default_factory=list, max_length=10)
    host_id: str | None = Field(default=None, min_length=1, max_length=64)
    cluster_id: str | None = Field(default=None, min_length=1, max_length=64)
    datastore_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="For the VM's files and disks."
    )
    power_on: bool = False
    zone: str | None = Field(
        default=None, min_length=1, max_length=130, description="Zone name, region/zone, or id."
    )
    group: str | None = Field(
        default=None, min_length=1, max_length=128, description="Placement group name or id."
    )
    strategy: Literal["spread", "pack"] = "spread"
    project_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The project to own the VM: platform admins only (others' VMs belong "
        "to their token's project); an admin's VM without one belongs to no project.",
    )


class VMPowerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: PowerAction
    graceful_timeout_s: float = Field(default=0.0, ge=0, le=600)


class VMRenameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VM_NAME_PATTERN)
    stop_if_running: bool = False


class VMResizeRequest(BaseModel):
    """Absolute values; at least one is needed (the service says so otherwise)."""

    model_config = ConfigDict(extra="forbid")

    cpu_count: int | None = Field(default=None, ge=1, le=256)
    memory_mib: int | None = Field(default=None, ge=16, le=4 * 1024 * 1024)


class DiskGrowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size_gib: int = Field(ge=1, le=65536, description="The new size; disks only grow.")


class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VM_NAME_PATTERN)


class SnapshotPublic(BaseModel):
    """A snapshot as the provider reports it; `id` is the provider's own."""

    id: str
    name: str
    description: str
    created_at: UtcDateTime | None
    parent_id: str | None
    is_current: bool


class VMCloneRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VM_NAME_PATTERN)
    host_id: str | None = Field(default=None, min_length=1, max_length=64)
    datastore_id: str | None = Field(default=None, min_length=1, max_length=64)


class VMMigrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host_id: str = Field(min_length=1, max_length=64)


TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:=/+-]{0,127}$"
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]


class VMSelector(BaseModel):
    """Which VMs a bulk request is about: the listed ids, or every VM the filters match
    (the same filters as the VM list; at least one is needed)."""

    model_config = ConfigDict(extra="forbid")

    vm_ids: list[str] = Field(default_factory=list, max_length=10_000)
    provider_id: str | None = Field(default=None, min_length=1, max_length=64)
    power_state: PowerState | None = None
    name: str | None = Field(default=None, min_length=1, max_length=128)
    host_id: str | None = Field(default=None, min_length=1, max_length=64)
    tag: Tag | None = None


class BulkPowerAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["power"]
    action: PowerAction
    graceful_timeout_s: float = Field(default=0.0, ge=0, le=600)


class BulkDeleteAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["delete"]


class BulkTagAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["tag"]
    add: list[Tag] = Field(default_factory=list, max_length=50)
    remove: list[Tag] = Field(default_factory=list, max_length=50)


class BulkRequestBody(BaseModel):
    """One action over many VMs, as a parent task with one item per VM."""

    model_config = ConfigDict(extra="forbid")

    select: VMSelector
    action: BulkPowerAction | BulkDeleteAction | BulkTagAction = Field(discriminator="kind")
    expected_count: int | None = Field(
        default=None,
        ge=1,
        description="Refuse (409) unless exactly this many VMs match: the count a preview showed.",
    )


class BulkPreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    select: VMSelector


class VMRef(BaseModel):
    id: str
    name: str


class BulkPreview(BaseModel):
    count: int = Field(description="VMs a bulk request with this selection would act on now.")
    vms: list[VMRef] = Field(description="The first 1,000 of them, by name.")


class TaskItem(BaseModel):
    """One VM of a bulk task."""

    vm_id: str
    vm_name: str
    position: int
    state: Literal["pending", "running", "succeeded", "failed", "cancelled"]
    child_task_id: str | None
    error: TaskError | None
    updated_at: UtcDateTime


class TaskItemPage(BaseModel):
    items: list[TaskItem]
    total: int = Field(description="Items matching the filter, over all pages.")


class TagChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: list[Tag] = Field(default_factory=list, max_length=50)
    remove: list[Tag] = Field(default_factory=list, max_length=50)


class VMTags(BaseModel):
    vm_id: str
    tags: list[str]


ROLE_NAME = Literal["reader", "member", "project-admin"]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)
    domain: str = Field(default="default", min_length=1, max_length=64)
    project: str | None = Field(
        default=None, min_length=1, max_length=64, description="Name or id; optional if one."
    )


class PrincipalPublic(BaseModel):
    user_id: str
    user_name: str
    domain_id: str
    is_admin: bool
    project_id: str | None
    role: ROLE_NAME | None
    token_id: str = Field(description="The token of this call: revoke it to log out.")


class LoginResult(BaseModel):
    token: str = Field(description="A session token: send it as `Authorization: Bearer`.")
    expires_at: UtcDateTime
    principal: PrincipalPublic


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    project: str | None = Field(default=None, min_length=1, max_length=64)
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class TokenPublic(BaseModel):
    id: str
    name: str
    kind: Literal["api", "session"]
    project_id: str | None
    created_at: UtcDateTime
    expires_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class TokenIssued(TokenPublic):
    secret: str = Field(description="Shown once; only its digest is kept.")


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    description: str = Field(default="", max_length=1024)


class DomainPublic(BaseModel):
    id: str
    name: str
    description: str
    created_at: UtcDateTime


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    domain: str = Field(default="default", min_length=1, max_length=64)
    description: str = Field(default="", max_length=1024)


class ProjectPublic(BaseModel):
    id: str
    domain_id: str
    name: str
    description: str
    created_at: UtcDateTime


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=64)
    password: SecretStr | None = Field(default=None, min_length=8, max_length=1024)
    domain: str = Field(default="default", min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=128)
    email: str = Field(default="", max_length=256)
    is_admin: bool = False
    source: Literal["local", "ldap"] = Field(
        default="local", description="ldap: the directory checks the password (give none)."
    )


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr | None = Field(default=None, min_length=8, max_length=1024)
    current_password: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Your current password: needed to change your own, not another's.",
    )
    enabled: bool | None = None
    locale: Literal["en", "zh-CN"] | None = None


class UserPublic(BaseModel):
    """A user as the API shows it: never a password hash."""

    id: str
    domain_id: str
    name: str
    display_name: str
    email: str
    source: str
    is_admin: bool
    enabled: bool
    locked: bool
    locale: str
    created_at: UtcDateTime


class RoleAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: ROLE_NAME


class MemberPublic(BaseModel):
    user_id: str
    user_name: str
    role: ROLE_NAME


class GrantPublic(BaseModel):
    kind: Literal["provider", "zone", "network"]
    target_id: str
    created_at: UtcDateTime


class Quota(BaseModel):
    """Limits of a project; null means unlimited."""

    model_config = ConfigDict(extra="forbid")

    vms: int | None = Field(default=None, ge=0, le=10_000_000)
    vcpus: int | None = Field(default=None, ge=0, le=100_000_000)
    ram_mib: int | None = Field(default=None, ge=0, le=1 << 50)
    disk_gib: int | None = Field(default=None, ge=0, le=1 << 40)
    floating_ips: int | None = Field(default=None, ge=0, le=10_000_000)
    snapshots: int | None = Field(default=None, ge=0, le=10_000_000)


class QuotaUsagePublic(BaseModel):
    """One quota of a project: `in_use` is in the inventory, `reserved` is what unfinished
    tasks will add to it; `limit` and `free` are null when unlimited."""

    quota: str = Field(description="vms, vcpus, ram_mib, disk_gib, floating_ips, snapshots")
    limit: int | None
    in_use: int
    reserved: int
    free: int | None


class ProjectUsage(BaseModel):
    project_id: str
    quotas: list[QuotaUsagePublic]


class QuotaExceededBody(ErrorBody):
    """403 `quota_exceeded`: the quota, its limit, what is taken (in use and reserved) and
    what the request asked, in the quota's unit (GiB for disk_gib)."""

    quota: str
    limit: int
    in_use: int
    requested: int


class AuditEntryPublic(BaseModel):
    """One mutating API call: who (user, project, source address), what (method, path,
    route name, target and task ids) and how it ended (status and outcome)."""

    id: int
    at: UtcDateTime
    request_id: str
    user_id: str | None
    user_name: str
    project_id: str | None
    source_ip: str
    method: str
    path: str
    action: str
    status_code: int
    outcome: Literal["success", "denied", "invalid", "error"]
    target_id: str | None
    task_id: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    next_cursor: str | None


class CapacityPublic(BaseModel):
    """Room in some pools: compute from their hosts (physical cores and memory) against
    the VMs on them, powered on or off, templates aside (as the scheduler counts);
    storage from their datastores. `free` is negative when overcommitted."""

    vcpus_total: int
    vcpus_used: int
    vcpus_free: int
    memory_mib_total: int
    memory_mib_used: int
    memory_mib_free: int
    storage_gib_total: float
    storage_gib_used: float
    storage_gib_free: float


class HostCounts(BaseModel):
    total: int
    connected: int
    maintenance: int
    disconnected: int


class VMCounts(BaseModel):
    """The caller's VMs (every VM: an admin) by power state; templates counted apart."""

    total: int = Field(description="VMs, templates aside: the sum of the power states.")
    running: int
    stopped: int
    suspended: int
    paused: int
    unknown: int
    templates: int


class OverviewPool(BaseModel):
    id: str
    name: str
    kind: str
    region: str
    zone: str
    zone_id: str
    status: Literal["ok", "unreachable", "error", "unknown"]
    reachable: bool = Field(description="Its last contact succeeded (status ok).")
    last_sync_at: UtcDateTime | None
    last_sync_ok_at: UtcDateTime | None
    inventory_age_s: float | None = Field(
        description="Seconds since the inventory was last read successfully."
    )
    hosts: HostCounts
    vms: int = Field(description="The caller's VMs there, templates aside.")
    capacity: CapacityPublic


class OverviewZone(BaseModel):
    """An availability zone, over the pools of it the caller sees."""

    id: str
    name: str
    region: str
    pools: int
    capacity: CapacityPublic


class Overview(BaseModel):
    """The dashboard: what the caller reaches (a project: its VMs, the pools and zones
    granted to it; a platform admin: everything)."""

    generated_at: UtcDateTime
    pools: list[OverviewPool]
    zones: list[OverviewZone]
    hosts: HostCounts
    vms: VMCounts
    capacity: CapacityPublic = Field(description="Over every pool listed.")
    recent_tasks: list[TaskPublic] = Field(description="The 10 newest, newest first.")
    recent_events: list[EventPublic] = Field(description="The 10 newest, newest first.")


class WhoAmI(PrincipalPublic):
    permissions: list[str] = Field(
        description="The operations (operationIds) this token may call, sorted: the "
        "policy's rules against the caller's role in the token's project. Objects of "
        "other projects stay out of reach whatever this says."
    )
    locale: Literal["en", "zh-CN"] | None = Field(
        description="The portal language the user chose; null: none yet."
    )


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Literal["en", "zh-CN"]


class Preferences(BaseModel):
    locale: Literal["en", "zh-CN"] | None


def error_response(description: str) -> dict[str, object]:
    """An error answer's OpenAPI entry, JSON whatever the route's own media type (an
    event stream's errors are JSON too: they are sent before any event)."""
    body = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    return {"description": description, "content": {"application/json": body}}


# --- adopting VMs in place (tessera.inventory.adoption) ---------------------------------

FOLDER_PATTERN = r"^/[^\x00-\x1f]{0,1023}$"


class AdoptionSelector(BaseModel):
    """Which VMs: the listed ids, or every VM the filters match (at least one is needed).
    `folder` takes that folder and every folder below it."""

    model_config = ConfigDict(extra="forbid")

    vm_ids: list[str] = Field(default_factory=list, max_length=10_000)
    provider_id: str | None = Field(default=None, min_length=1, max_length=64)
    cluster_id: str | None = Field(default=None, min_length=1, max_length=64)
    folder: str | None = Field(
        default=None, pattern=FOLDER_PATTERN, description='A folder path: "/DC0/vm/web".'
    )
    name: str | None = Field(default=None, min_length=1, max_length=128)
    power_state: PowerState | None = None
    guest_os: str | None = Field(default=None, min_length=1, max_length=128)


class ReleaseSelector(AdoptionSelector):
    project_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="The VMs of this project."
    )


class AdoptPreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    select: AdoptionSelector


class AdoptRequestBody(BaseModel):
    """Take unmanaged VMs into a project as they are: one task, an item per VM."""

    model_config = ConfigDict(extra="forbid")

    select: AdoptionSelector
    project_id: str = Field(min_length=1, max_length=64, description="The project to own them.")
    expected_count: int | None = Field(
        default=None,
        ge=1,
        description="Refuse (409) unless exactly this many VMs match: the count a preview showed.",
    )


class ReleasePreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    select: ReleaseSelector


class ReleaseRequestBody(BaseModel):
    """Give adopted VMs back to the platform (unmanaged again); the pools are untouched."""

    model_config = ConfigDict(extra="forbid")

    select: ReleaseSelector
    expected_count: int | None = Field(
        default=None,
        ge=1,
        description="Refuse (409) unless exactly this many VMs match: the count a preview showed.",
    )


class UnmanagedVM(BaseModel):
    """A VM no project owns yet: where it is (pool, host, cluster, folder) and its size."""

    id: str
    name: str
    power_state: PowerState
    cpu_count: int
    memory_mib: int
    guest_os: str
    provider_id: str
    host_id: str | None
    cluster_id: str | None
    folder: str = Field(description="Its folder in the pool; empty where pools have none.")
    is_template: bool
    instance_uuid: str
    created_at: UtcDateTime


class UnmanagedVMPage(BaseModel):
    items: list[UnmanagedVM]
    next_cursor: str | None
