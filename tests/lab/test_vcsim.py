"""The lab vCenter as a user of pyvmomi sees it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

from tessera.lab.vcsim import RunningVcsim, VcsimError, VcsimSpec, start_vcsim
from tests.fixtures.vcsim import SMALL_LAB


def connect(lab: RunningVcsim, password: str | None = None) -> Any:
    parts = urlsplit(lab.url)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return SmartConnect(
        host=parts.hostname,
        port=parts.port,
        user=lab.username,
        pwd=lab.password if password is None else password,
        sslContext=ctx,
    )


@pytest.fixture
def si(vcsim: RunningVcsim) -> Iterator[Any]:
    si = connect(vcsim)
    yield si
    Disconnect(si)


@pytest.fixture
def fresh_si(vcsim_fresh: RunningVcsim) -> Iterator[Any]:
    si = connect(vcsim_fresh)
    yield si
    Disconnect(si)


def objects(si: Any, kind: Any) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def macs_of(si: Any) -> set[str]:
    return {
        d.macAddress
        for vm in objects(si, vim.VirtualMachine)
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    }


def test_sizes_are_what_pyvmomi_sees(si: Any, vcsim: RunningVcsim) -> None:
    assert si.content.about.instanceUuid == vcsim.instance_uuid
    assert len(objects(si, vim.Datacenter)) == SMALL_LAB.datacenters
    clusters = objects(si, vim.ClusterComputeResource)
    assert len(clusters) == SMALL_LAB.clusters
    assert all(len(c.host) == SMALL_LAB.hosts_per_cluster for c in clusters)
    hosts = objects(si, vim.HostSystem)
    assert len(hosts) == SMALL_LAB.clusters * SMALL_LAB.hosts_per_cluster + 1
    assert len(objects(si, vim.Datastore)) == SMALL_LAB.datastores
    vms = objects(si, vim.VirtualMachine)
    assert len(vms) == SMALL_LAB.vms
    assert sum(vm.config.template for vm in vms) == SMALL_LAB.templates
    # Every datastore is mounted on every host.
    for ds in objects(si, vim.Datastore):
        assert {m.key._moId for m in ds.host} == {h._moId for h in hosts}
        assert 0 < ds.summary.freeSpace < ds.summary.capacity


def test_portgroups_have_distinct_vlans(si: Any) -> None:
    pgs = [
        pg for pg in objects(si, vim.dvs.DistributedVirtualPortgroup) if "DVUplinks" not in pg.name
    ]
    vlans = sorted(pg.config.defaultPortConfig.vlan.vlanId for pg in pgs)
    assert vlans == [100, 101]
    host = objects(si, vim.HostSystem)[0]
    std = {pg.spec.name: pg.spec.vlanId for pg in host.config.network.portgroup}
    assert std["DC0_VLAN200"] == 200


def test_vms_have_a_disk_and_a_nic(si: Any) -> None:
    for vm in objects(si, vim.VirtualMachine):
        devices = vm.config.hardware.device
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        nics = [d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)]
        assert disks and disks[0].capacityInBytes > 0
        assert disks[0].backing.fileName.startswith("[LocalDS_")
        assert nics and nics[0].macAddress
        assert isinstance(
            nics[0].backing,
            vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo,
        )
    macs = [
        d.macAddress
        for vm in objects(si, vim.VirtualMachine)
        for d in vm.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    assert len(macs) == len(set(macs))


def test_two_instances_differ(si: Any, vcsim: RunningVcsim, vcsim_fresh: RunningVcsim) -> None:
    other = connect(vcsim_fresh)
    try:
        assert vcsim.instance_uuid != vcsim_fresh.instance_uuid
        assert other.content.about.instanceUuid == vcsim_fresh.instance_uuid
        assert macs_of(si).isdisjoint(macs_of(other))
    finally:
        Disconnect(other)


def test_wrong_password_is_refused(vcsim: RunningVcsim) -> None:
    with pytest.raises(vim.fault.InvalidLogin):
        connect(vcsim, password="wrong")


def test_unset_properties_do_not_break_the_server(si: Any) -> None:
    vms = objects(si, vim.VirtualMachine)
    template = next(vm for vm in vms if vm.config.template)
    plain = next(vm for vm in vms if not vm.config.annotation)
    # Attribute reads go through Fetch, which used to panic on unset values.
    assert plain.snapshot is None
    assert plain.parentVApp is None
    assert template.resourcePool is None
    assert plain.config.annotation in ("", None)
    assert plain.summary.guest.ipAddress is None
    assert plain.guest.ipAddress is None
    # A path through an array is invalid: a fault, not a dropped connection.
    pc = si.content.propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=plain)],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.VirtualMachine, pathSet=["guest.net.ipAddress"]
            )
        ],
    )
    with pytest.raises(vmodl.query.InvalidProperty):
        pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
    assert plain.name  # still serving


def test_paging_returns_every_vm(si: Any) -> None:
    content = si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[
            vmodl.query.PropertyCollector.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    vmodl.query.PropertyCollector.TraversalSpec(
                        name="v", path="view", skip=False, type=vim.view.ContainerView
                    )
                ],
            )
        ],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])
        ],
    )
    pc = content.propertyCollector
    result = pc.RetrievePropertiesEx(
        [spec], vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=3)
    )
    names = [o.propSet[0].val for o in result.objects]
    assert len(names) == 3 and result.token
    while result.token:
        result = pc.ContinueRetrievePropertiesEx(result.token)
        names += [o.propSet[0].val for o in result.objects]
    assert len(set(names)) == SMALL_LAB.vms
    view.DestroyView()


def test_wait_for_task_on_common_tasks(fresh_si: Any) -> None:
    vms = [vm for vm in objects(fresh_si, vim.VirtualMachine) if not vm.config.template]
    vm = next(v for v in vms if v.runtime.powerState == "poweredOn")
    assert WaitForTask(vm.PowerOffVM_Task()) == "success"
    assert vm.runtime.powerState == "poweredOff"
    assert WaitForTask(vm.Rename_Task("renamed-vm")) == "success"
    assert vm.name == "renamed-vm"
    assert WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(annotation="note"))) == "success"
    assert vm.config.annotation == "note"

    clone_task = vm.CloneVM_Task(
        folder=vm.parent, name="clone-1", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec())
    )
    assert WaitForTask(clone_task) == "success"
    clone = clone_task.info.result
    assert clone.name == "clone-1"

    nic = vim.vm.device.VirtualDeviceSpec(
        operation="add",
        device=vim.vm.device.VirtualVmxnet3(
            key=-1,
            backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName="VM Network"),
        ),
    )
    config = vim.vm.ConfigSpec(
        name="created-1",
        numCPUs=1,
        memoryMB=256,
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        deviceChange=[nic],
    )
    create_task = vm.parent.CreateVM_Task(config=config, pool=vm.resourcePool)
    assert WaitForTask(create_task) == "success"
    created = create_task.info.result
    # Simulator-made MACs are replaced by ones unique across the lab.
    assert len(macs_of(fresh_si)) == sum(
        isinstance(d, vim.vm.device.VirtualEthernetCard)
        for v in objects(fresh_si, vim.VirtualMachine)
        for d in v.config.hardware.device
    )
    assert WaitForTask(created.Destroy_Task()) == "success"
    assert "created-1" not in {v.name for v in objects(fresh_si, vim.VirtualMachine)}
    with pytest.raises(vim.fault.InvalidPowerState):
        WaitForTask(vm.PowerOffVM_Task())


def test_start_failure_shows_stderr(tmp_path: Path) -> None:
    bad = VcsimSpec(listen="256.0.0.1:1")
    with pytest.raises(VcsimError, match="exited"):
        start_vcsim(bad, tmp_path)
