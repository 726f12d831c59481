"""Sync against the real lab: changes made in vCenter or libvirt arrive in the DB,
a pool that fails mid-sync keeps its last consistent inventory."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import libvirt
import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from sqlalchemy import func, select

from tessera.db.rows import ProviderRow, VMNicRow, VMRow
from tessera.errors import ProviderFailedError
from tessera.inventory import pools
from tessera.runtime import Runtime
from tests.fixtures.netfault import CuttingProxy


@pytest.fixture
def vc_si(vcsim_fresh: Any) -> Iterator[Any]:
    """An operator's pyvmomi session straight to the lab vCenter."""
    with vcsim_fresh.operator_session() as si:
        yield si


def _vms(si: Any) -> list[Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def _db_vms(rt: Runtime, provider_id: str) -> dict[str, VMRow]:
    with rt.sessions() as s:
        return {r.name: r for r in s.scalars(select(VMRow).where(VMRow.provider_id == provider_id))}


def _add_vsphere(rt: Runtime, lab: Any, url: str | None = None) -> str:
    spec = pools.ProviderSpec(
        name="vc",
        kind="vsphere",
        url=url or lab.url,
        username=lab.username,
        password=lab.password,
        verify_tls=False,
    )
    return pools.add_provider(rt, spec).id


def test_vsphere_add_change_remove_reach_the_db(
    runtime: Runtime, vcsim_fresh: Any, vc_si: Any
) -> None:
    pid = _add_vsphere(runtime, vcsim_fresh)
    pools.sync_provider(runtime, pid)
    vms = _vms(vc_si)
    assert set(_db_vms(runtime, pid)) == {vm.name for vm in vms}
    first, second, third = sorted(
        (vm for vm in vms if not vm.config.template), key=lambda v: v.name
    )[:3]
    if first.runtime.powerState != vim.VirtualMachinePowerState.poweredOn:
        WaitForTask(first.PowerOnVM_Task())
    WaitForTask(first.PowerOffVM_Task())
    WaitForTask(second.Rename_Task("renamed-in-vcenter"))
    gone = third.name
    if third.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
        WaitForTask(third.PowerOffVM_Task())
    WaitForTask(third.Destroy_Task())
    report = pools.sync_provider(runtime, pid)
    assert report.counts.removed["vm"] == 1 and report.counts.changed["vm"] >= 2
    rows = _db_vms(runtime, pid)
    assert rows[first.name].power_state == "stopped"
    assert "renamed-in-vcenter" in rows and gone not in rows
    assert len(rows) == len(vms) - 1
    # NICs in the DB carry the MACs vCenter shows, in device order
    macs = [
        d.macAddress
        for d in first.config.hardware.device
        if isinstance(d, vim.vm.device.VirtualEthernetCard)
    ]
    with runtime.sessions() as s:
        db_macs = list(
            s.scalars(
                select(VMNicRow.mac)
                .where(VMNicRow.vm_id == rows[first.name].id)
                .order_by(VMNicRow.position)
            )
        )
    assert db_macs == [m.lower() for m in macs]


def test_vsphere_down_mid_sync_keeps_last_inventory(
    runtime: Runtime, vcsim_fresh: Any, cutting_proxy: type[CuttingProxy]
) -> None:
    target = urlsplit(vcsim_fresh.url)
    proxy = cutting_proxy(target.hostname or "127.0.0.1", target.port or 443)
    pid = _add_vsphere(runtime, vcsim_fresh, url=f"https://127.0.0.1:{proxy.port}/sdk")
    pools.sync_provider(runtime, pid)
    before = {name: row.id for name, row in _db_vms(runtime, pid).items()}
    assert before
    # let the login and the first part of the inventory through, then drop the line
    proxy.cut_after(20_000)
    with pytest.raises(ProviderFailedError) as info:
        pools.sync_provider(runtime, pid)
    assert info.value.provider_code in {"unreachable", "timeout"} and info.value.retryable
    assert {name: row.id for name, row in _db_vms(runtime, pid).items()} == before
    with runtime.sessions() as s:
        row = s.get(ProviderRow, pid)
        assert row is not None
        assert row.status == "unreachable" and row.last_sync_ok_at is not None
        assert row.last_sync_at is not None and row.last_sync_at > row.last_sync_ok_at
    proxy.heal()
    pools.sync_provider(runtime, pid)
    with runtime.sessions() as s:
        assert s.scalar(select(ProviderRow.status).where(ProviderRow.id == pid)) == "ok"


def test_libvirt_define_start_undefine_reach_the_db(runtime: Runtime, kvm_host_fresh: Any) -> None:
    pid = pools.add_provider(
        runtime, pools.ProviderSpec(name="kvm", kind="libvirt", url=kvm_host_fresh.uri)
    ).id
    pools.sync_provider(runtime, pid)
    conn = libvirt.open(kvm_host_fresh.uri)
    try:
        domains = sorted(conn.listAllDomains(), key=lambda d: d.name())
        assert len(_db_vms(runtime, pid)) == len(domains)
        stopped = next(d for d in domains if not d.isActive())
        stopped.create()
        xml = domains[-1].XMLDesc(0)
        victim = domains[-1].name()
        if domains[-1].isActive():
            domains[-1].destroy()
        domains[-1].undefine()
        clone_xml = xml.replace(f"<name>{victim}</name>", "<name>defined-later</name>")
        clone_xml = re.sub(r"<uuid>[^<]+</uuid>", "", clone_xml)
        clone_xml = re.sub(r"<mac address='[^']+'/>", "", clone_xml)
        conn.defineXML(clone_xml)
        report = pools.sync_provider(runtime, pid)
    finally:
        conn.close()
    rows = _db_vms(runtime, pid)
    assert rows[stopped.name()].power_state == "running"
    assert victim not in rows and "defined-later" in rows
    assert report.counts.added["vm"] == 1 and report.counts.removed["vm"] == 1


def test_libvirt_host_down_marks_pool_unreachable(runtime: Runtime, kvm_host_fresh: Any) -> None:
    pid = pools.add_provider(
        runtime, pools.ProviderSpec(name="kvm", kind="libvirt", url=kvm_host_fresh.uri)
    ).id
    pools.sync_provider(runtime, pid)
    count = len(_db_vms(runtime, pid))
    kvm_host_fresh.stop()
    started = time.monotonic()
    with pytest.raises(ProviderFailedError):
        pools.sync_provider(runtime, pid)
    assert time.monotonic() - started < 30
    assert len(_db_vms(runtime, pid)) == count
    with runtime.sessions() as s:
        assert s.scalar(select(ProviderRow.status).where(ProviderRow.id == pid)) == "unreachable"
        assert s.scalar(select(func.count()).select_from(VMRow)) == count
