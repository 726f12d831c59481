"""The libvirt provider: one connection to one libvirt daemon (a KVM host).

Listing reads every domain's XML once and everything else in bulk (domain states and
block sizes in one getAllDomainStats call, volumes once per pool). The watch is driven by
libvirt's own events on the same connection, which also matters for the test driver,
whose state is private to each connection.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import libvirt

from tessera.domain.inventory import (
    DatastoreInfo,
    DiskInfo,
    HostInfo,
    InventoryChange,
    InventorySnapshot,
    NetworkInfo,
    NetworkKind,
    NicInfo,
    ObjectKind,
    ObjectRemoved,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.providers.base import Capabilities, Endpoint, ProviderAbout
from tessera.providers.faults import ProviderError, ProviderUnreachable
from tessera.providers.libvirt import domxml
from tessera.providers.libvirt.events import ensure_event_loop
from tessera.providers.libvirt.faults import translate
from tessera.providers.libvirt.vmops import LibvirtVMOps

_POWER: dict[int, PowerState] = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.STOPPED,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.STOPPED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.SUSPENDED,
}
_DEFAULT_PORTS = {"tcp": 16509, "tls": 16514}
_KEEPALIVE_INTERVAL_S = 2
_KEEPALIVE_COUNT = 3
_POLL_INTERVAL_S = 2.0
_WAKE_S = 0.25
_BRIDGE_PREFIX = "bridge:"
_PARALLEL_WORKERS = 4
_PARALLEL_MIN = 32
_T = TypeVar("_T")
_R = TypeVar("_R")

# (kind, native id) queued by event callbacks and re-read by the watching thread.
_Pending = tuple[ObjectKind, str]


def power_state(state: int, reason: int = 0) -> PowerState:
    """libvirt's virDomainState in Tessera's vocabulary; a domain shut off by managedsave
    (our suspend) is suspended."""
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_SAVED:
        return PowerState.SUSPENDED
    return _POWER.get(state, PowerState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class _Volume:
    path: str
    capacity: int
    pool_uuid: str


class _Volumes:
    """Storage volumes by path and by (pool, name): bulk-loaded for a listing, looked up
    one by one (and remembered) when the watch re-reads a single domain."""

    def __init__(self, conn: libvirt.virConnect) -> None:
        self._conn = conn
        self._by_path: dict[str, _Volume | None] = {}
        self._by_name: dict[tuple[str, str], _Volume | None] = {}

    def add_pool(self, pool: libvirt.virStoragePool, pool_uuid: str) -> None:
        vols = pool.listAllVolumes()
        for vol, info in zip(vols, _in_parallel(lambda v: v.info(), vols), strict=True):
            # For file-based pools the key is the path, and key() needs no round trip.
            entry = _Volume(vol.key(), info[1], pool_uuid)
            self._by_path[entry.path] = entry
            self._by_name[(pool.name(), vol.name())] = entry

    def resolve(self, disk: domxml.DiskDoc) -> _Volume | None:
        if disk.pool and disk.volume:
            key = (disk.pool, disk.volume)
            if key not in self._by_name:
                self._by_name[key] = self._lookup(
                    lambda: self._conn.storagePoolLookupByName(disk.pool).storageVolLookupByName(
                        disk.volume
                    )
                )
            return self._by_name[key]
        if not disk.path:
            return None
        if disk.path not in self._by_path:
            self._by_path[disk.path] = self._lookup(
                lambda: self._conn.storageVolLookupByPath(disk.path)
            )
        return self._by_path[disk.path]

    @staticmethod
    def _lookup(find: Callable[[], libvirt.virStorageVol]) -> _Volume | None:
        try:
            vol = find()
            return _Volume(vol.path(), vol.info()[1], vol.storagePoolLookupByVolume().UUIDString())
        except libvirt.libvirtError as err:
            if err.get_error_code() in (
                libvirt.VIR_ERR_NO_STORAGE_VOL,
                libvirt.VIR_ERR_NO_STORAGE_POOL,
            ):
                return None
            raise


class LibvirtProvider(LibvirtVMOps):
    """A libvirt host (QEMU/KVM, or libvirt's test driver) reached by a libvirt URI."""

    kind: ClassVar[str] = "libvirt"
    # Why templates and migration are off: see vmops.py.
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_snapshots=True,
        supports_live_migration=False,
        supports_cold_migration=False,
        supports_cbt=False,
        supports_dvs=False,
        supports_templates=False,
        supports_clone=True,
        supports_console=True,
        supports_hot_add_nic=True,
        supports_hot_add_disk=True,
        supports_push_events=True,
        supports_vm_create=True,
        supports_power_ops=True,
        supports_suspend=True,
        supports_rename=True,
        supports_resize=True,
        supports_nic_edit=True,
        supports_disk_edit=True,
    )

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._conn: libvirt.virConnect | None = None
        self._lost = threading.Event()
        self._host_id = ""

    # -- session -------------------------------------------------------------------

    def connect(self) -> ProviderAbout:
        ensure_event_loop()
        uri = self.endpoint.url
        self._probe_port()
        self._lost.clear()
        try:
            conn = self._open()
        except libvirt.libvirtError as err:
            raise translate(err, f"connect to {uri}") from err
        self._conn = conn
        with self._errors("read host identity"):
            # Keepalive needs the event loop; local (non-remote) drivers refuse it.
            with contextlib.suppress(libvirt.libvirtError):
                conn.setKeepAlive(_KEEPALIVE_INTERVAL_S, _KEEPALIVE_COUNT)
            conn.registerCloseCallback(self._on_close, None)
            self._host_id = self._read_host_id(conn)
            return ProviderAbout(
                product=f"libvirt/{conn.getType()}",
                version=_version(conn.getLibVersion()),
                instance_uuid=self._host_id,
            )

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with contextlib.suppress(libvirt.libvirtError):
            conn.close()

    def _open(self) -> libvirt.virConnect:
        if self.endpoint.username is None and self.endpoint.password is None:
            return libvirt.open(self.endpoint.url)
        creds = [libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE]
        return libvirt.openAuth(self.endpoint.url, [creds, self._answer_credentials, None], 0)

    def _answer_credentials(self, credentials: list[list[Any]], _opaque: object) -> int:
        for cred in credentials:
            if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                cred[4] = self.endpoint.username or ""
            elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                cred[4] = self.endpoint.password or ""
            else:
                return -1
        return 0

    def _probe_port(self) -> None:
        """Fail fast on a dead TCP endpoint: libvirt has no connect timeout of its own."""
        parts = urlsplit(self.endpoint.url)
        transport = parts.scheme.partition("+")[2]
        if transport not in _DEFAULT_PORTS:
            return
        host = parts.hostname or "localhost"
        port = parts.port or _DEFAULT_PORTS[transport]
        try:
            with socket.create_connection((host, port), timeout=self.endpoint.timeout_s):
                pass
        except OSError as err:
            raise ProviderUnreachable(
                f"connect to {self.endpoint.url}: {host}:{port} does not answer", detail=str(err)
            ) from err

    def _on_close(self, _conn: libvirt.virConnect, _reason: int, _opaque: object) -> None:
        self._lost.set()

    def _live(self) -> libvirt.virConnect:
        if self._conn is None:
            raise ProviderError("libvirt provider is not connected")
        if self._lost.is_set() or not self._conn.isAlive():
            raise ProviderUnreachable(f"connection to {self.endpoint.url} was lost")
        return self._conn

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except libvirt.libvirtError as err:
            conn = self._conn
            lost = self._lost.is_set() or conn is None or not conn.isAlive()
            raise translate(err, what, connection_lost=lost) from err

    def _read_host_id(self, conn: libvirt.virConnect) -> str:
        found = domxml.host_uuid(conn.getCapabilities())
        if found:
            return found
        # The test driver reports no host UUID: derive a stable one from where it lives.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{conn.getHostname()}|{self.endpoint.url}"))

    # -- inventory -----------------------------------------------------------------

    def list_inventory(self) -> InventorySnapshot:
        conn = self._live()
        with self._errors("list inventory"):
            volumes = _Volumes(conn)
            datastores = [self._datastore(pool, volumes) for pool in conn.listAllStoragePools()]
            networks = [self._network(net) for net in conn.listAllNetworks()]
            net_ids = {n.name: n.native_id for n in networks}
            vms: list[VMInfo] = []
            all_stats = conn.getAllDomainStats(
                libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_BLOCK
            )
            xmls = _in_parallel(lambda item: item[0].XMLDesc(0), all_stats)
            for (_dom, stats), xml in zip(all_stats, xmls, strict=True):
                doc = domxml.parse_domain(xml)
                state = (int(stats.get("state.state", 0)), int(stats.get("state.reason", 0)))
                vms.append(self._vm(doc, state, _block_sizes(stats), volumes, net_ids))
            networks += [self._bridge(name) for name in _bare_bridges(vms)]
            return InventorySnapshot(
                hosts=[self._host(conn)], datastores=datastores, networks=networks, vms=vms
            )

    def _host(self, conn: libvirt.virConnect) -> HostInfo:
        _model, memory_mib, cpus, mhz, *_ = conn.getInfo()
        return HostInfo(
            native_id=self._host_id,
            name=conn.getHostname(),
            cpu_cores=int(cpus),
            cpu_mhz=int(mhz),
            memory_mib=int(memory_mib),
            hypervisor=f"{conn.getType()} {_version(conn.getVersion())}",
        )

    def _datastore(self, pool: libvirt.virStoragePool, volumes: _Volumes) -> DatastoreInfo:
        pool_uuid = pool.UUIDString()
        _state, capacity, _allocation, available = pool.info()
        if pool.isActive():
            volumes.add_pool(pool, pool_uuid)
        return DatastoreInfo(
            native_id=pool_uuid,
            name=pool.name(),
            kind=domxml.pool_type(pool.XMLDesc(0)),
            capacity_bytes=int(capacity),
            free_bytes=int(available),
            host_native_ids=(self._host_id,),
        )

    def _network(self, net: libvirt.virNetwork) -> NetworkInfo:
        doc = domxml.parse_network(net.XMLDesc(0))
        return NetworkInfo(
            native_id=net.UUIDString(),
            name=net.name(),
            kind=NetworkKind.LIBVIRT_NETWORK,
            vlan_id=doc.vlan_id,
            host_native_ids=(self._host_id,),
        )

    def _bridge(self, name: str) -> NetworkInfo:
        return NetworkInfo(
            native_id=_BRIDGE_PREFIX + name,
            name=name,
            kind=NetworkKind.BRIDGE,
            host_native_ids=(self._host_id,),
        )

    def _vm(
        self,
        doc: domxml.DomainDoc,
        state: tuple[int, int],
        block_sizes: dict[str, int],
        volumes: _Volumes,
        net_ids: dict[str, str],
    ) -> VMInfo:
        disks = []
        for disk in doc.disks:
            vol = volumes.resolve(disk)
            disks.append(
                DiskInfo(
                    key=disk.target,
                    size_bytes=vol.capacity if vol else block_sizes.get(disk.target, 0),
                    label=f"{disk.bus} {disk.target}".strip(),
                    datastore_native_id=vol.pool_uuid if vol else None,
                    path=vol.path if vol else disk.path,
                    format=disk.fmt,
                )
            )
        return VMInfo(
            native_id=doc.uuid,
            name=doc.name,
            power_state=power_state(*state),
            cpu_count=doc.cpu_count,
            memory_mib=doc.memory_mib,
            guest_os=doc.guest_os,
            host_native_id=self._host_id,
            is_template=False,
            instance_uuid=doc.uuid,
            annotation=doc.annotation,
            disks=tuple(disks),
            nics=tuple(_nic(nic, net_ids) for nic in doc.nics),
        )

    def _read_vm(self, conn: libvirt.virConnect, dom: libvirt.virDomain) -> VMInfo:
        """One domain as list_inventory reports it (live XML while it runs)."""
        state, reason = dom.state()
        doc = domxml.parse_domain(dom.XMLDesc(0))
        sizes = _live_block_sizes(dom, doc) if dom.isActive() else {}
        nets = {n.name(): n.UUIDString() for n in conn.listAllNetworks()}
        return self._vm(doc, (state, reason), sizes, _Volumes(conn), nets)

    # -- watch ---------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> Iterator[list[InventoryChange]]:
        conn = self._live()
        pending: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        with self._errors("register for events"):
            deregister = _register_events(conn, pending)
        try:
            yield from self._watch_loop(conn, stop, pending, polling=deregister is None)
        finally:
            if deregister is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    deregister()

    def _watch_loop(
        self,
        conn: libvirt.virConnect,
        stop: threading.Event,
        pending: queue.SimpleQueue[_Pending],
        *,
        polling: bool,
    ) -> Iterator[list[InventoryChange]]:
        with self._errors("read domain states"):
            known = _domain_states(conn) if polling else {}
        yield []
        next_poll = time.monotonic() + _POLL_INTERVAL_S
        while not stop.is_set():
            self._live()
            todo: list[_Pending] = []
            with contextlib.suppress(queue.Empty):
                todo.append(pending.get(timeout=_WAKE_S))
                while True:
                    todo.append(pending.get_nowait())
            if polling and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + _POLL_INTERVAL_S
                with self._errors("read domain states"):
                    current = _domain_states(conn)
                todo += [
                    (ObjectKind.VM, key)
                    for key in known.keys() | current.keys()
                    if known.get(key) != current.get(key)
                ]
                known = current
            changes: list[InventoryChange] = []
            if todo:
                with self._errors("re-read changed objects"):
                    changes = [self._reread(conn, kind, key) for kind, key in dict.fromkeys(todo)]
            yield changes

    def _reread(self, conn: libvirt.virConnect, kind: ObjectKind, key: str) -> InventoryChange:
        """The object's current state, or its removal (a renamed domain keeps its UUID
        and so comes back as an upsert under its new name)."""
        try:
            if kind is ObjectKind.VM:
                return ObjectUpserted(kind, self._read_vm(conn, conn.lookupByUUIDString(key)))
            if kind is ObjectKind.NETWORK:
                return ObjectUpserted(kind, self._network(conn.networkLookupByUUIDString(key)))
            pool = conn.storagePoolLookupByUUIDString(key)
            return ObjectUpserted(kind, self._datastore(pool, _Volumes(conn)))
        except libvirt.libvirtError as err:
            if err.get_error_code() in (
                libvirt.VIR_ERR_NO_DOMAIN,
                libvirt.VIR_ERR_NO_NETWORK,
                libvirt.VIR_ERR_NO_STORAGE_POOL,
            ):
                return ObjectRemoved(kind, key)
            raise


def _in_parallel(call: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """`call` over `items` with a few concurrent requests on the one connection: libvirt
    multiplexes calls on a connection and the daemon serves them with several workers,
    which halves listing time for thousands of domains."""
    if len(items) < _PARALLEL_MIN:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=_PARALLEL_WORKERS) as pool:
        return list(pool.map(call, items))


def _register_events(
    conn: libvirt.virConnect, pending: queue.SimpleQueue[_Pending]
) -> Callable[[], None] | None:
    """Subscribe to domain, network and pool events; None when the driver has no events
    (the watch then polls)."""

    def on_domain(_conn: libvirt.virConnect, dom: libvirt.virDomain, *_args: object) -> None:
        pending.put((ObjectKind.VM, dom.UUIDString()))

    def on_network(_conn: libvirt.virConnect, net: libvirt.virNetwork, *_args: object) -> None:
        pending.put((ObjectKind.NETWORK, net.UUIDString()))

    def on_pool(_conn: libvirt.virConnect, pool: libvirt.virStoragePool, *_args: object) -> None:
        pending.put((ObjectKind.DATASTORE, pool.UUIDString()))

    domain_ids: list[int] = []
    try:
        for event_id in (
            libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED,
            libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
            libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
        ):
            domain_ids.append(conn.domainEventRegisterAny(None, event_id, on_domain, None))
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        for callback_id in domain_ids:
            conn.domainEventDeregisterAny(callback_id)
        return None
    network_ids: list[int] = []
    pool_ids: list[int] = []
    # Network and pool events are a bonus: a driver without them still has domain events.
    with contextlib.suppress(libvirt.libvirtError):
        network_ids.append(
            conn.networkEventRegisterAny(
                None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, on_network, None
            )
        )
        pool_ids.append(
            conn.storagePoolEventRegisterAny(
                None, libvirt.VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE, on_pool, None
            )
        )

    def deregister() -> None:
        for callback_id in domain_ids:
            conn.domainEventDeregisterAny(callback_id)
        for callback_id in network_ids:
            conn.networkEventDeregisterAny(callback_id)
        for callback_id in pool_ids:
            conn.storagePoolEventDeregisterAny(callback_id)

    return deregister


def _domain_states(conn: libvirt.virConnect) -> dict[str, tuple[str, int]]:
    """UUID -> (name, state) of every domain, in one round trip."""
    return {
        dom.UUIDString(): (dom.name(), int(stats.get("state.state", 0)))
        for dom, stats in conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE)
    }


def _block_sizes(stats: dict[str, Any]) -> dict[str, int]:
    """Disk target -> capacity from getAllDomainStats' block.N.* (running domains only)."""
    sizes = {}
    for index in range(int(stats.get("block.count", 0))):
        name = stats.get(f"block.{index}.name")
        capacity = stats.get(f"block.{index}.capacity")
        if name and capacity is not None:
            sizes[str(name)] = int(capacity)
    return sizes


def _live_block_sizes(dom: libvirt.virDomain, doc: domxml.DomainDoc) -> dict[str, int]:
    sizes = {}
    for disk in doc.disks:
        with contextlib.suppress(libvirt.libvirtError):
            sizes[disk.target] = int(dom.blockInfo(disk.target)[0])
    return sizes


def _nic(nic: domxml.NicDoc, net_ids: dict[str, str]) -> NicInfo:
    """The NIC keyed by its MAC: the target device (vnetN) changes at every start."""
    if nic.source_kind == "network":
        net_id = net_ids.get(nic.source)
    elif nic.source_kind == "bridge" and nic.source:
        net_id = _BRIDGE_PREFIX + nic.source
    else:
        net_id = None
    return NicInfo(
        key=nic.mac,
        mac=nic.mac,
        order=nic.order,
        network_native_id=net_id,
        network_name=nic.source,
        model=nic.model,
    )


def _bare_bridges(vms: list[VMInfo]) -> list[str]:
    """Host bridges that NICs use directly (`<interface type='bridge'>`)."""
    return sorted(
        {
            nic.network_native_id.removeprefix(_BRIDGE_PREFIX)
            for vm in vms
            for nic in vm.nics
            if nic.network_native_id and nic.network_native_id.startswith(_BRIDGE_PREFIX)
        }
    )


def _version(number: int) -> str:
    """libvirt's packed version (major * 1,000,000 + minor * 1,000 + release)."""
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
