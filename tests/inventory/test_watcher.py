"""Watchers keep the DB current from each pool's change feed, without a manual sync."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import libvirt
import pytest
from pyVim.task import WaitForTask
from pyVmomi import vim
from sqlalchemy import select

from tessera.db.rows import ProviderRow, VMRow
from tessera.inventory import pools
from tessera.inventory.watcher import WatchManager
from tessera.runtime import Runtime


def wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def watchers(runtime: Runtime) -> Iterator[WatchManager]:
    manager = WatchManager(runtime)
    yield manager
    manager.stop_all()


def _vm_state(rt: Runtime, provider_id: str, name: str) -> str | None:
    with rt.sessions() as s:
        return s.scalar(
            select(VMRow.power_state).where(VMRow.provider_id == provider_id, VMRow.name == name)
        )


def _status(rt: Runtime, provider_id: str) -> str | None:
    with rt.sessions() as s:
        return s.scalar(select(ProviderRow.status).where(ProviderRow.id == provider_id))


def test_libvirt_changes_arrive_without_a_sync(
    runtime: Runtime, kvm_host_fresh: Any, watchers: WatchManager
) -> None:
    pid = pools.add_provider(
        runtime, pools.ProviderSpec(name="kvm", kind="libvirt", url=kvm_host_fresh.uri)
    ).id
    watchers.start(pid)
    conn = libvirt.open(kvm_host_fresh.uri)
    try:
        wait_for(lambda: _vm_state(runtime, pid, f"{kvm_host_fresh.name}-vm-2") == "stopped")
        dom = conn.lookupByName(f"{kvm_host_fresh.name}-vm-2")
        dom.create()
        wait_for(lambda: _vm_state(runtime, pid, dom.name()) == "running", timeout_s=5)
        dom.destroy()
        dom.rename("renamed-by-operator")
        wait_for(lambda: _vm_state(runtime, pid, "renamed-by-operator") == "stopped", timeout_s=5)
        assert _vm_state(runtime, pid, f"{kvm_host_fresh.name}-vm-2") is None
    finally:
        conn.close()


def test_watcher_marks_a_dead_host_unreachable_and_keeps_inventory(
    runtime: Runtime, kvm_host_fresh: Any, watchers: WatchManager
) -> None:
    pid = pools.add_provider(
        runtime, pools.ProviderSpec(name="kvm", kind="libvirt", url=kvm_host_fresh.uri)
    ).id
    watchers.start(pid)
    wait_for(lambda: _vm_state(runtime, pid, f"{kvm_host_fresh.name}-vm-1") == "running")
    with runtime.sessions() as s:
        count = len(list(s.scalars(select(VMRow.id).where(VMRow.provider_id == pid))))
    kvm_host_fresh.stop()
    wait_for(lambda: _status(runtime, pid) == "unreachable", timeout_s=15)
    with runtime.sessions() as s:
        assert len(list(s.scalars(select(VMRow.id).where(VMRow.provider_id == pid)))) == count


def test_vsphere_power_off_and_rename_arrive_without_a_sync(
    runtime: Runtime, vcsim_fresh: Any, watchers: WatchManager
) -> None:
    pid = pools.add_provider(
        runtime,
        pools.ProviderSpec(
            name="vc",
            kind="vsphere",
            url=vcsim_fresh.url,
            username=vcsim_fresh.username,
            password=vcsim_fresh.password,
            verify_tls=False,
        ),
    ).id
    watchers.start(pid)
    with vcsim_fresh.operator_session() as si:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(
            content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.runtime.powerState == "poweredOn")
        name = vm.name
        wait_for(lambda: _vm_state(runtime, pid, name) == "running")
        WaitForTask(vm.PowerOffVM_Task())
        wait_for(lambda: _vm_state(runtime, pid, name) == "stopped", timeout_s=5)
        WaitForTask(vm.Rename_Task("renamed-in-vcenter"))
        wait_for(lambda: _vm_state(runtime, pid, "renamed-in-vcenter") == "stopped", timeout_s=5)
        assert _vm_state(runtime, pid, name) is None
        view.Destroy()
