"""VSphereProvider against the lab vCenter, checked against what pyvmomi reads directly."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim

from tessera.domain.inventory import (
    InventoryChange,
    NetworkKind,
    ObjectKind,
    ObjectRemoved,
    ObjectUpdated,
    ObjectUpserted,
    PowerState,
    VMInfo,
)
from tessera.lab.vcsim import RunningVcsim, VcsimSpec, start_vcsim
from tessera.providers.base import Endpoint
from tessera.providers.faults import ProviderAuthFailed, ProviderUnreachable
from tessera.providers.vsphere import VSphereProvider
from tests.fixtures.vcsim import SMALL_LAB


def endpoint(lab: RunningVcsim, password: str | None = None) -> Endpoint:
    return Endpoint(
        url=lab.url,
        username=lab.username,
        password=lab.password if password is None else password,
        verify_tls=False,
        timeout_s=10,
    )


def pyvmomi(lab: RunningVcsim) -> Any:
    parts = urlsplit(lab.url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return SmartConnect(
        host=parts.hostname, port=parts.port, user=lab.username, pwd=lab.password, sslContext=ctx
    )


def objects(si: Any, kind: Any) -> list[Any]:
    content = si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


@pytest.fixture
def provider(vcsim: RunningVcsim) -> Iterator[VSphereProvider]:
    p = VSphereProvider(endpoint(vcsim), page_size=3)
    p.connect()
    yield p
    p.close()


@pytest.fixture
def si(vcsim: RunningVcsim) -> Iterator[Any]:
    si = pyvmomi(vcsim)
    yield si
    Disconnect(si)


def test_connect_reports_the_instance(vcsim: RunningVcsim) -> None:
    p = VSphereProvider(endpoint(vcsim))
    about = p.connect()
    p.close()
    p.close()  # twice is fine
    assert about.instance_uuid == vcsim.instance_uuid
    assert about.product.startswith("VMware vCenter")
    assert about.version


def test_inventory_matches_pyvmomi(provider: VSphereProvider, si: Any) -> None:
    snap = provider.list_inventory()  # page_size 3 < 10 VMs: several pages
    vms = objects(si, vim.VirtualMachine)
    assert sorted(v.native_id for v in snap.vms) == sorted(vm._moId for vm in vms)
    assert len(snap.hosts) == len(objects(si, vim.HostSystem))
    assert [c.name for c in snap.clusters] == ["DC0_C0"]
    assert snap.clusters[0].datacenter == "DC0"
    assert len(snap.datastores) == SMALL_LAB.datastores

    by_id = {v.native_id: v for v in snap.vms}
    for vm in vms:
        info = by_id[vm._moId]
        assert info.name == vm.name
        expected = (
            PowerState.RUNNING if vm.runtime.powerState == "poweredOn" else PowerState.STOPPED
        )
        assert info.power_state == expected
        assert info.cpu_count == vm.config.hardware.numCPU
        assert info.memory_mib == vm.config.hardware.memoryMB
        assert info.host_native_id == vm.runtime.host._moId
        assert info.is_template == vm.config.template
        assert info.instance_uuid == vm.config.instanceUuid
        assert info.annotation == (vm.config.annotation or "")
        devices = vm.config.hardware.device
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert [(d.key, d.size_bytes, d.path, d.datastore_native_id) for d in info.disks] == [
            (str(d.key), d.capacityInBytes, d.backing.fileName, d.backing.datastore._moId)
            for d in disks
        ]
        assert [(n.mac, n.order) for n in info.nics] == [
            (d.macAddress, i) for i, d in enumerate(nics)
        ]
        assert info.nics[0].model == "vmxnet3"
        assert info.nics[0].network_native_id == nics[0].backing.port.portgroupKey

    hosts = {h.native_id: h for h in snap.hosts}
    for host in objects(si, vim.HostSystem):
        assert hosts[host._moId].cpu_cores == host.summary.hardware.numCpuCores
        parent = host.parent
        in_cluster = isinstance(parent, vim.ClusterComputeResource)
        assert hosts[host._moId].cluster_native_id == (parent._moId if in_cluster else None)


def test_networks_carry_vlans(provider: VSphereProvider) -> None:
    snap = provider.list_inventory()
    nets = {n.name: n for n in snap.networks}
    assert nets["DC0_DVPG0"].kind == NetworkKind.DVS_PORTGROUP
    assert nets["DC0_DVPG0"].vlan_id == 100
    assert nets["DC0_DVPG1"].vlan_id == 101
    assert nets["DC0_VLAN200"].kind == NetworkKind.STANDARD_PORTGROUP
    assert nets["DC0_VLAN200"].vlan_id == 200
    assert len(nets["DC0_VLAN200"].host_native_ids) == len(snap.hosts)
    vm_nets = {n.network_name for v in snap.vms for n in v.nics}
    assert {"DC0_DVPG0", "DC0_DVPG1", "DC0_VLAN200"} <= vm_nets


def test_wrong_password_is_auth_failed(vcsim: RunningVcsim) -> None:
    p = VSphereProvider(endpoint(vcsim, password="not-the-password-123"))
    with pytest.raises(ProviderAuthFailed) as err:
        p.connect()
    assert "not-the-password-123" not in f"{err.value} {err.value.detail} {p!r}"


def test_stopped_simulator_is_unreachable(tmp_path: Path) -> None:
    lab = start_vcsim(VcsimSpec(vms=2), tmp_path)
    p = VSphereProvider(endpoint(lab))
    p.connect()
    lab.stop()
    with pytest.raises(ProviderUnreachable):
        p.list_inventory()
    with pytest.raises(ProviderUnreachable):
        VSphereProvider(endpoint(lab)).connect()


class Watcher:
    """Runs watch() in a thread and collects its changes."""

    def __init__(self, provider: VSphereProvider) -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.changes: list[InventoryChange] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(provider,), daemon=True)
        self.thread.start()
        assert self.ready.wait(15), "watch did not start"

    def _run(self, provider: VSphereProvider) -> None:
        try:
            for batch in provider.watch(self.stop):
                self.changes.extend(batch)
                self.ready.set()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def wait_for(self, match: Callable[[InventoryChange], bool], timeout: float = 5) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if any(match(c) for c in self.changes):
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"no matching change in {self.changes[-5:]}")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_watch_reports_changes(vcsim_fresh: RunningVcsim) -> None:
    p = VSphereProvider(endpoint(vcsim_fresh))
    p.connect()
    si = pyvmomi(vcsim_fresh)
    watcher = Watcher(p)
    try:
        watcher.wait_for(
            lambda c: isinstance(c, ObjectUpserted) and c.kind == ObjectKind.VM, timeout=10
        )
        initial_vms = [
            c for c in watcher.changes if isinstance(c, ObjectUpserted) and c.kind == ObjectKind.VM
        ]
        assert len(initial_vms) == SMALL_LAB.vms
        vm = next(v for v in objects(si, vim.VirtualMachine) if v.runtime.powerState == "poweredOn")
        moid = vm._moId

        WaitForTask(vm.PowerOffVM_Task())
        took = watcher.wait_for(
            lambda c: (
                isinstance(c, ObjectUpdated)
                and c.native_id == moid
                and c.fields.get("power_state") == PowerState.STOPPED
            )
        )
        assert took < 1.0

        WaitForTask(vm.Rename_Task("watched-rename"))
        took = watcher.wait_for(
            lambda c: (
                isinstance(c, ObjectUpdated)
                and c.native_id == moid
                and c.fields.get("name") == "watched-rename"
            )
        )
        assert took < 1.0

        task = vm.CloneVM_Task(
            folder=vm.parent,
            name="watched-clone",
            spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()),
        )
        WaitForTask(task)
        clone = task.info.result
        watcher.wait_for(
            lambda c: (
                isinstance(c, ObjectUpserted)
                and isinstance(c.obj, VMInfo)
                and c.obj.native_id == clone._moId
                and c.obj.name == "watched-clone"
            )
        )
        WaitForTask(clone.Destroy_Task())
        watcher.wait_for(lambda c: isinstance(c, ObjectRemoved) and c.native_id == clone._moId)
        assert watcher.error is None
    finally:
        watcher.close()
        Disconnect(si)
        p.close()


def test_watch_raises_unreachable_when_vcenter_dies(tmp_path: Path) -> None:
    lab = start_vcsim(VcsimSpec(vms=2), tmp_path)
    p = VSphereProvider(endpoint(lab))
    p.connect()
    watcher = Watcher(p)
    lab.stop()
    watcher.thread.join(15)
    assert isinstance(watcher.error, ProviderUnreachable)
