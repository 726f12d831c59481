"""Candidates built by hand, and a small estate seeded through the real reconcile."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from tessera.db.rows import ProviderRow
from tessera.domain.inventory import (
    ClusterInfo,
    DatastoreInfo,
    HostInfo,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    PowerState,
    VMInfo,
)
from tessera.inventory import pools
from tessera.inventory.reconcile import reconcile
from tessera.runtime import Runtime
from tessera.scheduler.model import GIB, Candidate, CandidateKind, DatastoreSpace

KVM_CAPS = frozenset({"supports_snapshots", "supports_live_migration"})
VSPHERE_CAPS = KVM_CAPS | {"supports_cbt"}


def candidate(name: str = "h1", **overrides: Any) -> Candidate:
    """A KVM host with 16 cores, 64 GiB and one 1 TiB pool half free, idle, unless told."""
    base = Candidate(
        id=f"id-{name}",
        name=name,
        kind=CandidateKind.HOST,
        provider_id=f"p-{name}",
        provider_name=f"pool-{name}",
        provider_kind="libvirt",
        zone="z1",
        zone_name="az1",
        capabilities=KVM_CAPS,
        cpu_cores=16,
        vcpus_used=0,
        memory_mib=65536,
        memory_mib_used=0,
        datastores=(DatastoreSpace(f"ds-{name}", f"ds-{name}", 1024 * GIB, 512 * GIB),),
        networks=frozenset({"net-1"}),
        max_host_cores=16,
    )
    return dataclasses.replace(base, **overrides)


def vm(name: str, host: str, cpus: int, mib: int, **overrides: Any) -> VMInfo:
    fields: dict[str, Any] = {"power_state": PowerState.RUNNING, **overrides}
    return VMInfo(
        native_id=name, name=name, cpu_count=cpus, memory_mib=mib, host_native_id=host, **fields
    )


@dataclass(frozen=True)
class Estate:
    vcenter_id: str
    kvm_id: str


def seed_estate(rt: Runtime) -> Estate:
    """A vCenter in eu/az1 (cluster cl-a of esx-1 and esx-2, esx-2 in maintenance, and the
    standalone esx-9) and a KVM host in eu/az2, with a few VMs on each."""
    vcenter = pools.add_provider(
        rt,
        pools.ProviderSpec("vc1", "vsphere", "https://vc1/sdk", region="eu", zone="az1"),
        test_connection=False,
    ).id
    kvm = pools.add_provider(
        rt,
        pools.ProviderSpec("kvm1", "libvirt", "qemu+tcp://kvm1/system", region="eu", zone="az2"),
        test_connection=False,
    ).id
    vc_inventory = InventorySnapshot(
        clusters=[ClusterInfo("domain-c1", "cl-a")],
        hosts=[
            HostInfo("host-1", "esx-1", "domain-c1", cpu_cores=16, memory_mib=65536),
            HostInfo(
                "host-2", "esx-2", "domain-c1", cpu_cores=16, memory_mib=65536, in_maintenance=True
            ),
            HostInfo("host-9", "esx-9", cpu_cores=8, memory_mib=32768),
        ],
        datastores=[
            DatastoreInfo("ds-1", "ds-big", capacity_bytes=10240 * GIB, free_bytes=4096 * GIB),
            DatastoreInfo("ds-2", "ds-small", capacity_bytes=1024 * GIB, free_bytes=100 * GIB),
        ],
        networks=[NetworkInfo("dvportgroup-1", "pg-web", NetworkKind.DVS_PORTGROUP)],
        vms=[
            vm("web-1", "host-1", 4, 8192),
            vm("web-2", "host-2", 2, 4096, power_state=PowerState.STOPPED),
            vm("tpl", "host-1", 8, 16384, is_template=True),
            vm("lone", "host-9", 2, 2048),
        ],
    )
    kvm_inventory = InventorySnapshot(
        hosts=[HostInfo("kvm-host", "kvm1-host", cpu_cores=8, memory_mib=16384)],
        datastores=[
            DatastoreInfo("pool-1", "default", capacity_bytes=500 * GIB, free_bytes=200 * GIB)
        ],
        networks=[NetworkInfo("net-default", "default", NetworkKind.LIBVIRT_NETWORK)],
        vms=[vm("db-1", "kvm-host", 2, 4096)],
    )
    with rt.sessions.begin() as session:
        reconcile(session, vcenter, vc_inventory)
        reconcile(session, kvm, kvm_inventory)
    return Estate(vcenter, kvm)


def mark_unreachable(rt: Runtime, provider_id: str) -> None:
    with rt.sessions.begin() as session:
        session.execute(
            update(ProviderRow).where(ProviderRow.id == provider_id).values(status="unreachable")
        )
