"""Database rows. Separate from domain objects (tessera.domain) and API schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class RegionRow(Base):
    __tablename__ = "regions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class ZoneRow(Base):
    """An availability zone inside a region."""

    __tablename__ = "zones"
    __table_args__ = (UniqueConstraint("region_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    region_id: Mapped[str] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))


class ProviderRow(Base):
    """A pool under management: one vCenter or one KVM host."""

    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(512))
    username: Mapped[str | None] = mapped_column(String(256))
    secret: Mapped[str | None] = mapped_column(Text, doc="Encrypted password (SecretBox).")
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    zone_id: Mapped[str] = mapped_column(ForeignKey("zones.id"))
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_message: Mapped[str] = mapped_column(Text, default="")
    product: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[str] = mapped_column(String(64), default="")
    instance_uuid: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_ok_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sync_seconds: Mapped[float | None] = mapped_column(Float)
    network_settings: Mapped[dict[str, str] | None] = mapped_column(
        JSON, doc="Where Tessera reaches the pool's switch (tessera.network.poolsettings)."
    )
    datastore_mounts: Mapped[dict[str, str] | None] = mapped_column(
        JSON, doc="Datastore name -> local mount path on the conversion host (vSphere pools)."
    )


class ClusterRow(Base):
    __tablename__ = "clusters"
    __table_args__ = (UniqueConstraint("provider_id", "native_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    native_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    datacenter: Mapped[str | None] = mapped_column(String(256))


class HostRow(Base):
    __tablename__ = "hosts"
    __table_args__ = (UniqueConstraint("provider_id", "native_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    native_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    cluster_id: Mapped[str | None] = mapped_column(ForeignKey("clusters.id", ondelete="SET NULL"))
    cpu_cores: Mapped[int] = mapped_column(Integer, default=0)
    cpu_mhz: Mapped[int] = mapped_column(Integer, default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    connected: Mapped[bool] = mapped_column(Boolean, default=True)
    hypervisor: Mapped[str] = mapped_column(String(64), default="")


class DatastoreRow(Base):
    __tablename__ = "datastores"
    __table_args__ = (UniqueConstraint("provider_id", "native_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    native_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32), default="")
    capacity_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    free_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class NetworkRow(Base):
    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("provider_id", "native_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    native_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))
    vlan_id: Mapped[int | None] = mapped_column(Integer)


class VMRow(Base):
    __tablename__ = "vms"
    __table_args__ = (
        UniqueConstraint("provider_id", "native_id"),
        Index("ix_vms_name_id", "name", "id"),
        Index("ix_vms_provider_name", "provider_id", "name", "id"),
        Index("ix_vms_power_name", "power_state", "name", "id"),
        Index("ix_vms_host_name", "host_id", "name", "id"),
        Index("ix_vms_project_name", "project_id", "name", "id"),
        Index("ix_vms_cpu_id", "cpu_count", "id"),
        Index("ix_vms_memory_id", "memory_mib", "id"),
        Index("ix_vms_folder_name", "folder", "name", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    native_id: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    power_state: Mapped[str] = mapped_column(String(16))
    cpu_count: Mapped[int] = mapped_column(Integer, default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    guest_os: Mapped[str] = mapped_column(String(256), default="")
    host_id: Mapped[str | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    instance_uuid: Mapped[str] = mapped_column(String(64), default="")
    annotation: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(
        String(1024), default="", doc="Its folder's path in the pool (vSphere), or empty."
    )
    tags: Mapped[list[str]] = mapped_column(
        JSON, default=list, doc="Sorted tags, for reading; vm_tags indexes them for filters."
    )
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"),
        doc="The tenant owning the VM; none for a VM not (yet) adopted into a project.",
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VMDiskRow(Base):
    """A VM's disk; integer ids, as disks and NICs are addressed through their VM."""

    __tablename__ = "vm_disks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(256), default="")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    datastore_id: Mapped[str | None] = mapped_column(
        ForeignKey("datastores.id", ondelete="SET NULL")
    )
    path: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(32), default="")


class VMNicRow(Base):
    __tablename__ = "vm_nics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    vm_id: Mapped[str] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(32), index=True)
    network_id: Mapped[str | None] = mapped_column(ForeignKey("networks.id", ondelete="SET NULL"))
    network_name: Mapped[str] = mapped_column(String(256), default="")
    model: Mapped[str] = mapped_column(String(64), default="")


class VMTagRow(Base):
    """One row per tag, so `?tag=` filters through an index."""

    __tablename__ = "vm_tags"

    vm_id: Mapped[str] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)


class PlacementGroupRow(Base):
    """A named set of VMs the scheduler keeps together (affinity) or apart (anti-affinity).
    Its name is unique in its project, or among the platform's groups (no project)."""

    __tablename__ = "placement_groups"
    __table_args__ = (
        Index("uq_placement_groups_project_name", "project_id", "name", unique=True),
        # NULLs are distinct in a unique index (SQLite and PostgreSQL alike), so the
        # platform's groups need their own: a partial index over the rows of no project.
        Index(
            "uq_placement_groups_platform_name",
            "name",
            unique=True,
            sqlite_where=text("project_id IS NULL"),
            postgresql_where=text("project_id IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    policy: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PlacementGroupMemberRow(Base):
    """A VM in a placement group; it leaves the group when the VM leaves the inventory."""

    __tablename__ = "placement_group_members"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("placement_groups.id", ondelete="CASCADE"), primary_key=True
    )
    vm_id: Mapped[str] = mapped_column(
        ForeignKey("vms.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TaskRow(Base):
    """A durable task as the API shows it; DBOS runs it (`workflow_id`), this row tells it.

    `params` holds what the steps need, in native ids; it never leaves the service layer.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_created_id", "created_at", "id"),
        Index("ix_tasks_state_created", "state", "created_at", "id"),
        Index("ix_tasks_kind_created", "kind", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    params: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    requester: Mapped[str] = mapped_column(String(128))
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("providers.id", ondelete="SET NULL"))
    vm_id: Mapped[str | None] = mapped_column(
        String(36), index=True, doc="Target VM; no FK, it may go."
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    workflow_id: Mapped[str] = mapped_column(String(80), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    executor_id: Mapped[str | None] = mapped_column(
        String(128), doc="The worker that ran its latest step (the one that resumed it)."
    )
    parent_id: Mapped[str | None] = mapped_column(
        String(36), index=True, doc="The bulk task this one does one VM of."
    )
    project_id: Mapped[str | None] = mapped_column(
        String(36), index=True, doc="The project it was run for; none for platform work."
    )


class WorkerRow(Base):
    """A task worker's heartbeat; a silent one's workflows are swept to live workers.
    `swept_at`/`swept_by` record the claim, and fence the worker should it still live."""

    __tablename__ = "workers"

    executor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    swept_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    swept_by: Mapped[str | None] = mapped_column(String(128))


class VMLockRow(Base):
    """One VM held by one unfinished task. `key` is the VM's row id, or `new:<provider
    id>:<name>` for a VM a create task has not made yet; the primary key makes taking a
    lock race-free across processes."""

    __tablename__ = "vm_locks"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EventRow(Base):
    """Something that happened: a task's transition or a change in the inventory, with
    who did it and, for a change, the fields before and after. Append-only; ids rise with
    time, so lists page by id. No foreign keys: an event outlives what it is about."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_object", "object_id", "id"),
        Index("ix_events_provider", "provider_id", "id"),
        Index("ix_events_task", "task_id", "id"),
        Index("ix_events_kind", "kind", "id"),
        Index("ix_events_project", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(48), doc="e.g. task.succeeded, vm.changed")
    actor: Mapped[str] = mapped_column(String(128), doc="A user, or the sync/watch feed.")
    object_kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str | None] = mapped_column(String(36))
    object_name: Mapped[str] = mapped_column(String(256), default="")
    provider_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))
    project_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, object] | None] = mapped_column(JSON)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON)


class PlacementClaimRow(Base):
    """Capacity a create task holds on the candidate the scheduler chose, from the request
    until its VM is in the inventory; concurrent creates see each other's claims."""

    __tablename__ = "placement_claims"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[str] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    candidate_id: Mapped[str] = mapped_column(String(36), doc="The host or cluster chosen.")
    datastore_id: Mapped[str | None] = mapped_column(String(36))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    disk_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaskItemRow(Base):
    """One VM of a bulk task: its outcome, and the child task doing the work if any."""

    __tablename__ = "task_items"
    __table_args__ = (Index("ix_task_items_order", "task_id", "position"),)

    task_id: Mapped[str] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True
    )
    vm_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    vm_name: Mapped[str] = mapped_column(String(256), default="")
    state: Mapped[str] = mapped_column(String(16))
    child_task_id: Mapped[str | None] = mapped_column(String(36), index=True)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DomainRow(Base):
    """A namespace of users and projects (as Keystone's domains)."""

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectRow(Base):
    """A tenant: it owns VMs, tasks and placement groups, and has quotas and grants."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserRow(Base):
    """A person or robot. Local users have an argon2 hash; LDAP users none (the directory
    checks their password). Failed logins lock the account for a while."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(128), default="")
    email: Mapped[str] = mapped_column(String(256), default="")
    source: Mapped[str] = mapped_column(String(16), default="local", doc="local or ldap.")
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, doc="Platform admin.")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locale: Mapped[str] = mapped_column(String(16), default="", doc="The portal's language.")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RoleAssignmentRow(Base):
    """A user's one role in one project: project-admin, member or reader."""

    __tablename__ = "role_assignments"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TokenRow(Base):
    """A bearer token: only its SHA-256 digest is kept. API tokens are named, scoped to a
    project (or none, for a platform admin) and expire; session tokens are the portal's,
    short-lived. Revoked tokens stay, for the audit trail."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), doc="api or session.")
    name: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GrantRow(Base):
    """A pool, an availability zone or a network a project may use (pools are the
    platform's; projects see and use only what they are granted)."""

    __tablename__ = "grants"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    target_kind: Mapped[str] = mapped_column(
        String(16), primary_key=True, doc="provider, zone, network"
    )
    target_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class QuotaRow(Base):
    """A project's limits; none means unlimited."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    vms: Mapped[int | None] = mapped_column(Integer)
    vcpus: Mapped[int | None] = mapped_column(Integer)
    ram_mib: Mapped[int | None] = mapped_column(BigInteger)
    disk_gib: Mapped[int | None] = mapped_column(BigInteger)
    floating_ips: Mapped[int | None] = mapped_column(Integer)
    snapshots: Mapped[int | None] = mapped_column(Integer)


class AuditRow(Base):
    """One mutating API call: who, for which project, from where, and how it ended. Never
    a request body (it may hold a password)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_project", "project_id", "id"),
        Index("ix_audit_user", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    request_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(36))
    user_name: Mapped[str] = mapped_column(String(128), default="")
    project_id: Mapped[str | None] = mapped_column(String(36))
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    action: Mapped[str] = mapped_column(String(64), doc="The route's name, e.g. create_vm.")
    status_code: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), doc="success, denied, invalid, error.")
    target_id: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))


class SegmentRow(Base):
    """A Tessera-managed L2 network (a "segment": flat, VLAN or VXLAN), realised as a
    portgroup (or bridge) on each of its pools. `segment_key` makes a VLAN id unique per
    physical network and a VNI unique overall, race-free."""

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_project", "project_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    network_type: Mapped[str] = mapped_column(String(16))
    segmentation_id: Mapped[int | None] = mapped_column(Integer)
    physical_network: Mapped[str | None] = mapped_column(String(64))
    segment_key: Mapped[str] = mapped_column(String(96), unique=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    region_id: Mapped[str | None] = mapped_column(ForeignKey("regions.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SegmentRealisationRow(Base):
    """A segment on one pool: the native object made for it there, once made."""

    __tablename__ = "segment_realisations"

    segment_id: Mapped[str] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[str] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    native_id: Mapped[str | None] = mapped_column(String(128))
    native_name: Mapped[str] = mapped_column(String(256), default="")
    location: Mapped[str] = mapped_column(
        String(256), default="", doc="Where on the pool: the switch it is on."
    )


class SubnetRow(Base):
    __tablename__ = "subnets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    segment_id: Mapped[str] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128), default="")
    cidr: Mapped[str] = mapped_column(String(64))
    ip_version: Mapped[int] = mapped_column(Integer)
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    allocation_pools: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NetPortRow(Base):
    """A port on a segment (Neutron's port): a MAC, fixed IPs, and what it serves: a VM's
    NIC, a router's interface or gateway."""

    __tablename__ = "ports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    segment_id: Mapped[str] = mapped_column(
        ForeignKey("segments.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(128), default="")
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    device_owner: Mapped[str] = mapped_column(String(32), default="")
    device_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IPAllocationRow(Base):
    """An address of a subnet held by a port or a floating IP; the primary key makes
    handing out one address twice impossible."""

    __tablename__ = "ip_allocations"

    subnet_id: Mapped[str] = mapped_column(
        ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), index=True
    )
    floating_ip_id: Mapped[str | None] = mapped_column(
        ForeignKey("floating_ips.id", ondelete="CASCADE"), index=True
    )


class RouterRow(Base):
    __tablename__ = "routers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    external_segment_id: Mapped[str | None] = mapped_column(
        ForeignKey("segments.id", ondelete="SET NULL")
    )
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FloatingIPRow(Base):
    """An address of an external segment, 1:1 NAT to a port's fixed IP when associated."""

    __tablename__ = "floating_ips"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(ForeignKey("ports.id", ondelete="SET NULL"))
    fixed_ip: Mapped[str | None] = mapped_column(String(64))
    router_id: Mapped[str | None] = mapped_column(ForeignKey("routers.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SecurityGroupRow(Base):
    __tablename__ = "security_groups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SecurityGroupRuleRow(Base):
    __tablename__ = "security_group_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(16))
    port_range_min: Mapped[int | None] = mapped_column(Integer)
    port_range_max: Mapped[int | None] = mapped_column(Integer)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64))
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PortSecurityGroupRow(Base):
    __tablename__ = "port_security_groups"

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("security_groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AddressRangeRow(Base):
    """An address range Tessera does not allocate from but must not collide with: a
    region's address space, a VPN peer's range, a routed announcement, a migration
    target's range (tessera.network.overlap)."""

    __tablename__ = "address_ranges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(24))
    cidr: Mapped[str] = mapped_column(String(64))
    region_id: Mapped[str | None] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MigrationPlanRow(Base):
    """A VMware to KVM migration plan (tessera.migration): what moves where, with which
    network and storage maps; editable while `state` is draft. `readiness` is the last
    report; `task_id` the task running (or that last ran) it."""

    __tablename__ = "migration_plans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source_provider_id: Mapped[str | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL")
    )
    target_provider_id: Mapped[str | None] = mapped_column(
        ForeignKey("providers.id", ondelete="SET NULL")
    )
    network_map: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    storage_map: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    target_format: Mapped[str] = mapped_column(String(8))
    mode: Mapped[str] = mapped_column(String(8))
    schedule_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    parallelism: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    state: Mapped[str] = mapped_column(String(16))
    readiness: Mapped[dict[str, object] | None] = mapped_column(JSON)
    task_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MigrationVMRow(Base):
    """One source VM of a plan: its phases' states, its disks' progress (bytes, MiB/s,
    ETA), the target domain once defined, and the power state to restore on rollback."""

    __tablename__ = "migration_vms"
    __table_args__ = (UniqueConstraint("plan_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    plan_id: Mapped[str] = mapped_column(
        ForeignKey("migration_plans.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    vm_id: Mapped[str] = mapped_column(String(36), doc="The source VM's row; no FK, it may go.")
    vm_name: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str | None] = mapped_column(String(16), doc="The current or failed phase.")
    phases: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    disks: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    target_native_id: Mapped[str | None] = mapped_column(String(64))
    original_power: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InterconnectRow(Base):
    """Two regions joined (tessera.network.interconnect): routed (`bgp`, `ospf`) or VPN
    (`ipsec`, `gre`). Each side is its region's gateway router as JSON (namespace,
    underlay_ip, asn, tunnel_ip, ranges); `range_ids` are the address ranges recorded for
    the sides' extra prefixes; `psk_secret` the IPsec key, encrypted (SecretBox)."""

    __tablename__ = "interconnects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    region_a_id: Mapped[str] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    region_b_id: Mapped[str] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"))
    side_a: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    side_b: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    ospf_area: Mapped[str | None] = mapped_column(String(16))
    range_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    psk_secret: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
