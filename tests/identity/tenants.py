"""Two tenants side by side, for the isolation tests: projects `alpha` and `beta`, each
with a reader, a member, a project admin and a spare user, each granted a pool of its
own, owning VMs there, with a task, a bulk task, a placement group and an API token.

Everything is made through the API as an operator would, except the inventory: each pool
is a libvirt URL nobody answers at (loopback port 1), registered without a connection
test and read in from a made-up snapshot, so tasks fail at their first provider call
and no hypervisor is needed. alpha is granted its pool by a provider grant and only the
first of its two networks by a network grant; beta its pool by a zone grant (so both of
its networks). The pools also hold a VM no project has adopted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tessera.db.rows import (
    DatastoreRow,
    HostRow,
    NetworkRow,
    ProviderRow,
    VMDiskRow,
    VMNicRow,
    VMRow,
)
from tessera.domain.inventory import (
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    NicInfo,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime
from tests.tasks.helpers import wait_task

SIDES = ("alpha", "beta")
ROLES = ("reader", "member", "project-admin")
GIB = 1 << 30


def other(side: str) -> str:
    return SIDES[1 - SIDES.index(side)]


def as_client(api: TestClient, token: str) -> TestClient:
    client = TestClient(api.app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


@dataclass
class Pool:
    """A pool's inventory ids: one host, one datastore, two networks, VMs by name."""

    id: str
    zone_id: str
    host: str
    datastore: str
    networks: list[str]
    vms: dict[str, str]


@dataclass
class Tenant:
    """One project and what it owns; `clients` and `users` by role, plus `spare`."""

    name: str
    project: str
    pool: Pool
    vms: list[str]
    users: dict[str, str] = field(default_factory=dict)
    clients: dict[str, TestClient] = field(default_factory=dict)
    nic: int = 0
    disk: int = 0
    task: str = ""
    bulk_task: str = ""
    group: str = ""
    token: str = ""


@dataclass
class World:
    api: TestClient
    rt: Runtime
    tenants: dict[str, Tenant]
    unadopted: list[str]

    def foreign_ids(self, side: str) -> set[str]:
        """Ids a caller of `side`'s project must never be shown: the other project's
        rows and pool, the VMs no project owns, and the networks of its own pool it is
        not granted."""
        them = self.tenants[other(side)]
        ids = {them.project, them.task, them.bulk_task, them.group, them.token}
        ids |= set(them.vms) | set(them.users.values())
        ids |= {them.pool.id, them.pool.host, them.pool.datastore, *them.pool.networks}
        ids |= set(self.unadopted)
        if side == "alpha":
            ids.add(self.tenants["alpha"].pool.networks[1])
        return ids


def _seed_pool(rt: Runtime, name: str) -> Pool:
    spec = pools.ProviderSpec(
        name=f"pool-{name}", kind="libvirt", url="qemu+tcp://127.0.0.1:1/system", zone=f"z-{name}"
    )
    pid = pools.add_provider(rt, spec, test_connection=False).id
    base = VMInfo(native_id="", name="", power_state=PowerState.RUNNING, host_native_id="h1")
    vms = [
        dataclasses.replace(
            base,
            native_id=f"{name}-{i}",
            name=f"{name}-{i}",
            cpu_count=1,
            memory_mib=256,
            disks=(DiskInfo(key="vda", size_bytes=GIB, datastore_native_id="ds1"),),
            nics=(
                NicInfo(
                    key="n0",
                    mac=f"52:54:00:{len(name):02x}:00:{i:02x}",
                    order=0,
                    network_native_id="net1",
                ),
            ),
        )
        for i in range(4)
    ]
    snapshot = InventorySnapshot(
        hosts=[HostInfo(native_id="h1", name=f"{name}-host", cpu_cores=16, memory_mib=65536)],
        datastores=[DatastoreInfo("ds1", f"{name}-ds", capacity_bytes=100 * GIB, free_bytes=GIB)],
        networks=[
            NetworkInfo("net1", f"{name}-net1", NetworkKind.BRIDGE),
            NetworkInfo("net2", f"{name}-net2", NetworkKind.BRIDGE),
        ],
        vms=vms,
    )
    with rt.sessions.begin() as session:
        reconcile(session, pid, snapshot)

    with rt.sessions() as session:

        def ids(row: Any) -> dict[str, str]:
            found = session.execute(select(row.native_id, row.id).where(row.provider_id == pid))
            return {native: row_id for native, row_id in found}

        zone_id = session.scalars(select(ProviderRow.zone_id).where(ProviderRow.id == pid)).one()
        networks = ids(NetworkRow)
        return Pool(
            id=pid,
            zone_id=zone_id,
            host=ids(HostRow)["h1"],
            datastore=ids(DatastoreRow)["ds1"],
            networks=[networks["net1"], networks["net2"]],
            vms=ids(VMRow),
        )


def one_host_pool(rt: Runtime, name: str) -> tuple[str, str]:
    """A pool nobody answers at, with one host and one datastore in its inventory: its
    id and the host's."""
    spec = pools.ProviderSpec(name, "libvirt", "qemu+tcp://127.0.0.1:1/system")
    pid = pools.add_provider(rt, spec, test_connection=False).id
    snapshot = InventorySnapshot(
        hosts=[HostInfo(native_id="h1", name=f"{name}-host", cpu_cores=8, memory_mib=8192)],
        datastores=[DatastoreInfo("ds1", f"{name}-ds", capacity_bytes=100 * GIB, free_bytes=GIB)],
    )
    with rt.sessions.begin() as session:
        reconcile(session, pid, snapshot)
    with rt.sessions() as session:
        return pid, session.scalars(select(HostRow.id).where(HostRow.provider_id == pid)).one()


def _people(api: TestClient, tenant: Tenant) -> None:
    """Users of every role (and a spare reader) in the tenant's project, logged in."""
    for role in (*ROLES, "spare"):
        name = f"{tenant.name}-{role}"
        made = ok(api.post("/v1/users", json={"name": name, "password": f"pw-{name}"}), 201)
        tenant.users[role] = made["id"]
        assign = {"role": "reader" if role == "spare" else role}
        ok(api.put(f"/v1/projects/{tenant.project}/members/{made['id']}", json=assign), 204)
        if role != "spare":
            login = {"user": name, "password": f"pw-{name}"}
            tenant.clients[role] = as_client(
                api, ok(api.post("/v1/auth/login", json=login))["token"]
            )


def _grants(api: TestClient, tenant: Tenant) -> None:
    base = f"/v1/projects/{tenant.project}/grants"
    if tenant.name == "alpha":
        ok(api.put(f"{base}/provider/{tenant.pool.id}"), 204)
        ok(api.put(f"{base}/network/{tenant.pool.networks[0]}"), 204)
    else:
        ok(api.put(f"{base}/zone/{tenant.pool.zone_id}"), 204)


def _owned(api: TestClient, tenant: Tenant) -> None:
    """Adopt the tenant's VMs, then as its member: a power task (which fails: nobody
    answers at the pool), a bulk tag task, a placement group and an API token."""
    for vm_id in tenant.vms:
        adopted = ok(api.put(f"/v1/vms/{vm_id}/project", json={"project_id": tenant.project}))
        assert adopted["project_id"] == tenant.project
    member = tenant.clients["member"]
    task = ok(member.post(f"/v1/vms/{tenant.vms[1]}/power", json={"action": "start"}), 202)
    tenant.task = task["id"]
    tag = {"select": {"vm_ids": [tenant.vms[2]]}, "action": {"kind": "tag", "add": ["seed"]}}
    tenant.bulk_task = ok(member.post("/v1/vms/bulk", json=tag), 202)["id"]
    group = {"name": f"{tenant.name}-group", "policy": "anti-affinity"}
    tenant.group = ok(member.post("/v1/placement-groups", json=group), 201)["id"]
    ok(member.put(f"/v1/placement-groups/{tenant.group}/members/{tenant.vms[0]}"))
    made = {"name": f"{tenant.name}-ci", "expires_in_days": 1}
    tenant.token = ok(member.post("/v1/auth/tokens", json=made), 201)["id"]
    for task_id in (tenant.task, tenant.bulk_task):
        wait_task(member, task_id)


def build(api: TestClient, rt: Runtime) -> World:
    tenants: dict[str, Tenant] = {}
    unadopted: list[str] = []
    for name in SIDES:
        pool = _seed_pool(rt, name)
        project = ok(api.post("/v1/projects", json={"name": name}), 201)["id"]
        owned = [pool.vms[f"{name}-{i}"] for i in range(3)]
        unadopted.append(pool.vms[f"{name}-3"])
        tenant = Tenant(name=name, project=project, pool=pool, vms=owned)
        with rt.sessions() as session:
            tenant.nic = session.scalars(
                select(VMNicRow.id).where(VMNicRow.vm_id == owned[0])
            ).one()
            tenant.disk = session.scalars(
                select(VMDiskRow.id).where(VMDiskRow.vm_id == owned[0])
            ).one()
        _people(api, tenant)
        _grants(api, tenant)
        _owned(api, tenant)
        tenants[name] = tenant
    return World(api=api, rt=rt, tenants=tenants, unadopted=unadopted)
