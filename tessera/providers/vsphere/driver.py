"""The vSphere provider: pyvmomi for the session and small calls, raw SOAP for bulk reads.

Inventory is one ContainerView per read and RetrievePropertiesEx pages fetched by a
background thread, so vCenter builds page N+1 while we decode page N (scan.py). watch()
is a private PropertyCollector with a filter over the same view and WaitForUpdatesEx.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from lxml import etree
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tessera.domain.inventory import (
    ClusterInfo,
    DatastoreInfo,
    HostInfo,
    InventoryChange,
    InventorySnapshot,
    NetworkInfo,
    ObjectRemoved,
    ObjectUpdated,
    ObjectUpserted,
)
from tessera.providers.base import Capabilities, Endpoint, ProviderAbout
from tessera.providers.faults import ProviderError
from tessera.providers.vsphere import parse, scan
from tessera.providers.vsphere.faults import translate
from tessera.providers.vsphere.portgroups import VSpherePortgroupOps
from tessera.providers.vsphere.soap import VIM, MoRef, SoapClient, filter_spec_xml, token_of

log = logging.getLogger(__name__)

# pyVim is untyped; these aliases give mypy a signature without silencing it elsewhere.
_smart_connect: Callable[..., Any] = SmartConnect
_disconnect: Callable[[Any], None] = Disconnect

INFRA_TYPES = [
    vim.Folder,
    vim.Datacenter,
    vim.ClusterComputeResource,
    vim.HostSystem,
    vim.Datastore,
    vim.Network,
    vim.dvs.DistributedVirtualPortgroup,
    vim.OpaqueNetwork,
]
# Within one batch, context objects first so VMs can name their networks.
_ORDER = {t: i for i, t in enumerate(parse.INFRA_PROPERTIES)} | {"VirtualMachine": 99}
_RETURNVAL = VIM + "returnval"
_FILTER_SET = VIM + "filterSet"
_OBJECT_SET = VIM + "objectSet"
_KIND = VIM + "kind"
_VERSION = VIM + "version"
_UPSERT_BATCH = 1000


class VSphereProvider(VSpherePortgroupOps):
    """One vCenter (or ESXi host) session."""

    kind = "vsphere"
    capabilities = Capabilities(
        supports_snapshots=True,
        supports_live_migration=True,
        supports_cold_migration=True,
        supports_cbt=True,
        supports_dvs=True,
        supports_templates=True,
        supports_clone=True,
        # Off until it can be tested: the lab vCenter (govmomi 0.24's simulator) has no
        # AcquireTicket, so a WebMKS console URL could not be checked against anything.
        supports_console=False,
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

    def __init__(self, endpoint: Endpoint, page_size: int = 1000) -> None:
        super().__init__(endpoint)
        self.page_size = page_size
        self._si: Any = None
        self._ssl: ssl.SSLContext | None = None

    def __repr__(self) -> str:
        return f"VSphereProvider(url={self.endpoint.url!r}, username={self.endpoint.username!r})"

    # -- session -----------------------------------------------------------------------

    def connect(self) -> ProviderAbout:
        parts = urlsplit(self.endpoint.url)
        if parts.scheme == "https":
            self._ssl = ssl.create_default_context()
            if not self.endpoint.verify_tls:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        try:
            self._si = _smart_connect(
                protocol=parts.scheme or "https",
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 80),
                path=parts.path or "/sdk",
                user=self.endpoint.username or "",
                pwd=self.endpoint.password or "",
                sslContext=self._ssl,
                httpConnectionTimeout=self.endpoint.timeout_s,
            )
            about = self._si.content.about
        except Exception as exc:
            self._si = None
            raise translate(exc, self.endpoint.password) from None
        return ProviderAbout(
            product=about.fullName or about.name or "",
            version=about.version or "",
            instance_uuid=about.instanceUuid or "",
        )

    def close(self) -> None:
        si, self._si = self._si, None
        if si is not None:
            try:
                _disconnect(si)
            except Exception as exc:  # the session may already be gone; nothing to undo
                log.debug("vSphere logout failed: %s", translate(exc, self.endpoint.password))

    def _content(self) -> Any:
        if self._si is None:
            raise ProviderError("not connected; call connect() first")
        return self._call(lambda: self._si.content)  # an attribute read is a remote call

    def _soap(self, timeout_s: float | None = None) -> SoapClient:
        stub = self._si._stub
        return SoapClient(
            self.endpoint.url,
            stub.cookie,
            stub.versionId,
            self._ssl,
            timeout_s or self.endpoint.timeout_s,
            self.endpoint.password,
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A small pyvmomi call with faults mapped."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc, self.endpoint.password) from None

    def _view(self, types: list[Any]) -> Any:
        content = self._content()
        return self._call(content.viewManager.CreateContainerView, content.rootFolder, types, True)

    def _collector(self) -> MoRef:
        pc = self._content().propertyCollector
        return MoRef("PropertyCollector", pc._moId)

    # -- inventory ---------------------------------------------------------------------

    def _start_pages(
        self,
        view: Any,
        properties: Mapping[str, Sequence[str]],
        decode: Callable[[bytes], list[parse.ObjectProps]],
    ) -> Iterator[list[parse.ObjectProps]]:
        """Start reading RetrievePropertiesEx pages now; iterate for their decoded objects.

        A thread asks for the next page as soon as the previous one arrived, then decodes
        it, so vCenter works while we decode, and our decoding overlaps the database
        writes of the previous page (SQLite releases the GIL while it works)."""
        client = self._soap()
        this = self._collector().xml("_this")
        spec = filter_spec_xml(MoRef("ContainerView", view._moId), properties)
        first = (
            f"{this}<specSet>{spec}</specSet>"
            f"<options><maxObjects>{self.page_size}</maxObjects></options>"
        )
        pages: queue.SimpleQueue[list[parse.ObjectProps] | ProviderError | None] = (
            queue.SimpleQueue()
        )

        def fetch() -> None:
            try:
                client.send("RetrievePropertiesEx", first)
                while True:
                    page = client.receive()
                    token = token_of(page)
                    if token is not None:
                        client.send(
                            "ContinueRetrievePropertiesEx",
                            f"{this}<token>{escape(token)}</token>",
                        )
                    pages.put(decode(page))
                    if token is None:
                        break
                pages.put(None)
            except ProviderError as exc:
                pages.put(exc)
            except Exception as exc:
                pages.put(translate(exc, self.endpoint.password))
            finally:
                client.close()

        worker = threading.Thread(target=fetch, name="vsphere-pages", daemon=True)
        worker.start()
        return _drain(pages, worker)

    def list_inventory(self) -> InventorySnapshot:
        snap = InventorySnapshot()
        for chunk in self.stream_inventory():
            snap.extend(chunk)
        return snap

    def stream_inventory(self) -> Iterator[InventorySnapshot]:
        """Hosts, clusters, datastores and networks first, then one chunk per VM page."""
        infra_view = self._view(INFRA_TYPES)
        vm_view = self._view([vim.VirtualMachine])
        try:
            yield from self._read_inventory(infra_view, vm_view)
        finally:
            for view in (infra_view, vm_view):
                try:
                    view.DestroyView()
                except Exception as exc:  # the session may be gone; the view dies with it
                    log.debug("DestroyView failed: %s", translate(exc, self.endpoint.password))

    def _read_inventory(self, infra_view: Any, vm_view: Any) -> Iterator[InventorySnapshot]:
        # VMs are most of the bytes: start them first, read the rest meanwhile.
        vm_pages = self._start_pages(
            vm_view, {"VirtualMachine": parse.VM_PROPERTIES}, scan.read_vm_page
        )
        resolver = parse.Resolver()
        infra = [
            obj
            for page in self._start_pages(infra_view, parse.INFRA_PROPERTIES, parse.decode_page)
            for obj in page
        ]
        for kind, moid, props in infra:
            resolver.learn(kind, moid, props)
        snap = InventorySnapshot()
        for kind, moid, props in infra:
            if kind not in parse.OBJECT_KINDS:
                continue
            obj = parse.build(kind, moid, props, resolver)
            if isinstance(obj, ClusterInfo):
                snap.clusters.append(obj)
            elif isinstance(obj, HostInfo):
                snap.hosts.append(obj)
            elif isinstance(obj, DatastoreInfo):
                snap.datastores.append(obj)
            elif isinstance(obj, NetworkInfo):
                snap.networks.append(obj)
        yield snap
        for page in vm_pages:
            yield InventorySnapshot(
                vms=[parse.build_vm(moid, props, resolver) for _kind, moid, props in page]
            )

    # -- watch -------------------------------------------------------------------------

    def watch(self, stop: threading.Event) -> Iterator[list[InventoryChange]]:
        content = self._content()
        collector = self._call(content.propertyCollector.CreatePropertyCollector)
        view = self._view([*INFRA_TYPES, vim.VirtualMachine])
        # WaitForUpdatesEx holds the line for up to maxWaitSeconds; leave room for that.
        client = self._soap(max(self.endpoint.timeout_s, 10.0))
        this = MoRef("PropertyCollector", collector._moId).xml("_this")
        try:
            spec = filter_spec_xml(MoRef("ContainerView", view._moId), parse.ALL_PROPERTIES)
            client.call(
                "CreateFilter", f"{this}<spec>{spec}</spec><partialUpdates>false</partialUpdates>"
            )
            yield []
            resolver = parse.Resolver()
            version = ""
            while not stop.is_set():
                data = client.call_raw(
                    "WaitForUpdatesEx",
                    f"{this}<version>{escape(version)}</version>"
                    "<options><maxWaitSeconds>1</maxWaitSeconds></options>",
                )
                returnval = etree.fromstring(data)[0][0].find(_RETURNVAL)
                if returnval is None:
                    yield []  # nothing changed within maxWaitSeconds: a heartbeat
                    continue
                version = returnval.findtext(_VERSION) or version
                changes = _translate_updates(returnval, resolver)
                for start in range(0, len(changes), _UPSERT_BATCH):
                    yield changes[start : start + _UPSERT_BATCH]
        finally:
            client.close()
            for cleanup in (collector.DestroyPropertyCollector, view.DestroyView):
                try:
                    cleanup()
                except Exception as exc:  # lost connection: the server drops them with it
                    log.debug("watch cleanup failed: %s", translate(exc, self.endpoint.password))


def _drain(
    pages: queue.SimpleQueue[list[parse.ObjectProps] | ProviderError | None],
    worker: threading.Thread,
) -> Iterator[list[parse.ObjectProps]]:
    while True:
        item = pages.get()
        if item is None:
            break
        if isinstance(item, ProviderError):
            raise item
        yield item
    worker.join()


def _translate_updates(returnval: Any, resolver: parse.Resolver) -> list[InventoryChange]:
    """An UpdateSet's ObjectUpdates as domain changes, context objects first."""
    updates: list[tuple[int, str, str, str, dict[str, Any]]] = []
    for fs in returnval.iterchildren(_FILTER_SET):
        for ou in fs.iterchildren(_OBJECT_SET):
            kind, moid = parse.obj_of(ou)
            op = ou.findtext(_KIND) or ""
            props = parse.decode_changes(ou, kind) if op != "leave" else {}
            if op != "leave":
                resolver.learn(kind, moid, props)
            updates.append((_ORDER.get(kind, 50), op, kind, moid, props))
    updates.sort(key=lambda u: u[0])
    out: list[InventoryChange] = []
    for _, op, kind, moid, props in updates:
        obj_kind = parse.OBJECT_KINDS.get(kind)
        if obj_kind is None:
            continue
        if op == "enter":
            out.append(ObjectUpserted(obj_kind, parse.build(kind, moid, props, resolver)))
        elif op == "leave":
            out.append(ObjectRemoved(obj_kind, moid))
        else:
            fields = parse.fields_of(kind, props, resolver)
            if fields:
                out.append(ObjectUpdated(obj_kind, moid, fields))
    return out
