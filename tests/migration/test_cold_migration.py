"""Cold migration of lab vCenter VMs carrying the lab's tiny guest to a lab KVM host, end
to end through the API: the copies are compared with the source disks byte for byte, the
migrated VMs boot under TCG through libvirt and print the source's MACs in order, and the
source keeps everything but its power state and one annotation line.

Each test uses its own VMs of one module-wide vCenter and KVM host.
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import libvirt
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from pyVmomi import vim

from tessera.config import Settings
from tessera.lab.guest import (
    MARKER,
    NIC_PREFIX,
    build_guest,
    install_guest,
    put_datastore_file,
)
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.providers.vsphere.export import ANNOTATION_PREFIX
from tests.tasks.helpers import register, submitted, wait_task


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


def _vm(lab: RunningVcsim, name: str) -> dict[str, Any]:
    """The source VM as vCenter itself has it (hardware, power, notes)."""
    with lab.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == name)
        devices = vm.config.hardware.device
        found = {
            "power": str(vm.runtime.powerState),
            "cpus": vm.config.hardware.numCPU,
            "memory_mib": vm.config.hardware.memoryMB,
            "firmware": vm.config.firmware,
            "annotation": vm.config.annotation or "",
            "macs": [
                d.macAddress for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)
            ],
            "disks": [
                (d.backing.fileName, d.capacityInBytes)
                for d in devices
                if isinstance(d, vim.vm.device.VirtualDisk)
            ],
        }
        view.DestroyView()
        return found


def _datastore_file(lab: RunningVcsim, ds_path: str) -> Path:
    datastore, _, path = ds_path.partition("] ")
    folder = next((lab.workdir / "datastores").glob(f"govcsim-*-{datastore.lstrip('[')}-*"))
    return folder / path


class Lab:
    """The registered pools and what a plan needs from them, in Tessera ids."""

    def __init__(self, api: TestClient, vc: RunningVcsim, kvm: RunningKvmHost) -> None:
        self.api, self.vc, self.kvm = api, vc, kvm
        self.source = register(api, "vsphere", vc, "mig-vc")
        self.target = register(api, "libvirt", kvm, "mig-kvm")
        nets = api.get("/v1/networks", params={"provider_id": self.target}).json()["items"]
        self.kvm_net = next(n for n in nets if n["vlan_id"] is None)
        self.pool = api.get("/v1/datastores", params={"provider_id": self.target}).json()["items"][
            0
        ]
        self.src_nets = api.get("/v1/networks", params={"provider_id": self.source}).json()["items"]
        self.src_stores = api.get("/v1/datastores", params={"provider_id": self.source}).json()[
            "items"
        ]

    def vm_id(self, name: str) -> str:
        found = self.api.get("/v1/vms", params={"provider_id": self.source, "name": name})
        return str(next(v["id"] for v in found.json()["items"] if v["name"] == name))

    def plan(self, name: str, vms: list[str], fmt: str = "qcow2", **extra: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "source_provider_id": self.source,
            "target_provider_id": self.target,
            "vm_ids": [self.vm_id(v) for v in vms],
            "network_map": {n["id"]: self.kvm_net["id"] for n in self.src_nets},
            "storage_map": {d["id"]: self.pool["id"] for d in self.src_stores},
            "target_format": fmt,
        } | extra
        answer = self.api.post("/v1/migration-plans", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def run(self, plan: dict[str, Any], action: str = "start") -> dict[str, Any]:
        return wait_task(
            self.api, submitted(self.api.post(f"/v1/migration-plans/{plan['id']}/{action}")), 300
        )

    def domain(self, name: str) -> etree._Element | None:
        conn = libvirt.open(self.kvm.uri)
        try:
            return etree.fromstring(conn.lookupByName(name).XMLDesc(0).encode())
        except libvirt.libvirtError:
            return None
        finally:
            conn.close()


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


@pytest.mark.parametrize(("vm_name", "fmt"), [("DC0_VM00000", "qcow2"), ("DC0_VM00004", "raw")])
def test_cold_migration_copies_boots_and_keeps_identity(
    lab: Lab, tmp_path: Path, vm_name: str, fmt: str
) -> None:
    install_guest(lab.vc, vm_name, tmp_path)
    before = _vm(lab.vc, vm_name)
    plan = lab.plan(f"move-{fmt}", [vm_name], fmt)
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    assert report["ready"], report
    assert report["vms"][0]["transfer_bytes"] > 0 and report["vms"][0]["estimate_s"] >= 0

    task = lab.run(plan)
    assert task["state"] == "succeeded", task.get("error")
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["state"] == "succeeded"
    (vm,) = shown["vms"]
    assert vm["state"] == "migrated" and set(vm["phases"].values()) >= {"done"}
    (disk,) = vm["disks"]
    assert disk["state"] == "done" and disk["done_bytes"] == disk["total_bytes"] > 0
    assert disk["mib_s"] > 0 and disk["eta_s"] == 0

    # Digest: the guest sees the same bytes in the copy as in the source.
    source_file = _datastore_file(lab.vc, before["disks"][0][0])
    target_file = lab.kvm.home / "pool" / disk["volume"]
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "vmdk", "-F", fmt, str(source_file), str(target_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr

    # Fidelity: vCPUs, memory, firmware, MACs in NIC order, networks per the map.
    dom = lab.domain(vm_name)
    assert dom is not None
    assert int(dom.findtext("vcpu") or 0) == before["cpus"]
    assert int(dom.findtext("memory") or 0) == before["memory_mib"] * 1024  # KiB
    assert dom.find("os").get("firmware") is None and before["firmware"] == "bios"
    ifaces = dom.findall("devices/interface")
    assert [i.find("mac").get("address") for i in ifaces] == before["macs"]
    assert {i.find("source").get("network") for i in ifaces} == {lab.kvm_net["name"]}
    assert [d.find("driver").get("type") for d in dom.findall("devices/disk")] == [fmt]

    # The migrated VM booted under TCG and printed the marker and the source's MACs.
    serial = Path(dom.find("devices/serial/source").get("path")).read_text(errors="replace")
    assert MARKER in serial
    seen = [ln.split()[-1] for ln in serial.splitlines() if ln.startswith(NIC_PREFIX)]
    assert seen == before["macs"]

    # The source: only its power state and our annotation line changed.
    after = _vm(lab.vc, vm_name)
    assert after["power"] == "poweredOff"
    assert {k: v for k, v in after.items() if k not in ("power", "annotation")} == {
        k: v for k, v in before.items() if k not in ("power", "annotation")
    }
    lines = after["annotation"].splitlines()
    assert [ln for ln in lines if not ln.startswith(ANNOTATION_PREFIX)] == (
        before["annotation"].splitlines()
    )
    assert any(ln.startswith(ANNOTATION_PREFIX) for ln in lines)

    events = lab.api.get("/v1/events", params={"object_id": plan["id"]}).json()["items"]
    assert {"migration.phase.done"} <= {e["kind"] for e in events}

    # Rollback: the source back as it was, the target gone.
    undone = lab.run(plan, "rollback")
    assert undone["state"] == "succeeded", undone
    restored = _vm(lab.vc, vm_name)
    assert restored["power"] == before["power"]
    assert restored["annotation"] == before["annotation"]
    assert lab.domain(vm_name) is None and not target_file.exists()
    assert lab.api.get(f"/v1/migration-plans/{plan['id']}").json()["state"] == "rolled_back"


def _forged_capacity(vmdk: Path, sectors: int) -> None:
    with vmdk.open("r+b") as fh:
        fh.seek(12)
        fh.write(struct.pack("<Q", sectors))


def test_hostile_disks_are_refused_before_any_data_is_read(lab: Lab, tmp_path: Path) -> None:
    sentinel = tmp_path / "host-secret.raw"
    sentinel.write_bytes(b"secret" * 1000)
    os.utime(sentinel, (1_000_000, 2_000_000))  # atime older than mtime: a read moves it
    cases = {
        "DC0_VM00001": "outside its folder",
        "DC0_VM00003": "backing file",
        "DC0_VM00005": "external file",
        "DC0_VM00002": "more than the target pool",
    }
    # A descriptor whose flat extent is a host file.
    descriptor = tmp_path / "evil.vmdk"
    descriptor.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n'
        f'RW 12 FLAT "{sentinel}" 0\n'
    )
    put_datastore_file(lab.vc, _vm(lab.vc, "DC0_VM00001")["disks"][0][0], descriptor)
    backed = tmp_path / "backed.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(sentinel), "-F", "raw", str(backed)],
        check=True,
    )
    put_datastore_file(lab.vc, _vm(lab.vc, "DC0_VM00003")["disks"][0][0], backed)
    external = tmp_path / "external.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={sentinel}",
         str(external), "1M"],
        check=True,
    )  # fmt: skip
    put_datastore_file(lab.vc, _vm(lab.vc, "DC0_VM00005")["disks"][0][0], external)
    huge = tmp_path / "huge.vmdk"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse",
         str(huge), "1G"],
        check=True,
    )  # fmt: skip
    _forged_capacity(huge, 1 << 44)  # 8 PiB
    put_datastore_file(lab.vc, _vm(lab.vc, "DC0_VM00002")["disks"][0][0], huge)

    plan = lab.plan("hostile", list(cases))
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    assert not report["ready"]
    for vm in report["vms"]:
        refused = [f for f in vm["findings"] if f["code"] == "disk_refused"]
        assert refused and cases[vm["name"]] in refused[0]["message"], vm
    answer = lab.api.post(f"/v1/migration-plans/{plan['id']}/start")
    assert answer.status_code == 409 and answer.json()["code"] == "plan_not_ready"
    assert "outside its folder" in answer.json()["message"]
    assert os.stat(sentinel).st_atime == 1_000_000, "a host file was read"
    assert lab.api.get(f"/v1/migration-plans/{plan['id']}").json()["state"] == "draft"
    assert not list((lab.kvm.home / "pool").glob(f"mig-{plan['id'][:8]}-*"))


def corrupt_disk(lab: Lab, vm_name: str, workdir: Path) -> None:
    """A streamOptimized guest whose headers are sound and whose compressed grains are
    garbage from a third on: it passes readiness and qemu-img fails inflating it."""
    ds_path = _vm(lab.vc, vm_name)["disks"][0][0]
    broken = workdir / ds_path.rpartition("/")[2]
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized",
         str(build_guest()), str(broken)],
        check=True,
    )  # fmt: skip
    size = broken.stat().st_size
    with broken.open("r+b") as fh:
        fh.seek(size // 3)
        fh.write(b"\xa5" * (size // 3))
    put_datastore_file(lab.vc, ds_path, broken)


def test_qemu_img_failure_leaves_the_source_as_it_was(lab: Lab, tmp_path: Path) -> None:
    vm_name = "DC0_VM00006"
    corrupt_disk(lab, vm_name, tmp_path)
    before = _vm(lab.vc, vm_name)
    assert before["power"] == "poweredOn"

    plan = lab.plan("broken", [vm_name])
    task = lab.run(plan)
    assert task["state"] == "failed" and "copy failed" in task["error"]["message"], task
    shown = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()
    assert shown["state"] == "failed"
    (vm,) = shown["vms"]
    assert (vm["state"], vm["phase"]) == ("failed", "copy") and vm["error"]
    after = _vm(lab.vc, vm_name)
    assert after == before
    assert lab.domain(vm_name) is None
    assert not list((lab.kvm.home / "pool").glob(f"mig-{plan['id'][:8]}-*"))
    # It can be resumed (the disk is still broken: it fails the same way, cleanly).
    again = lab.run(plan, "resume")
    assert again["state"] == "failed" and again["id"] != task["id"]


def test_readiness_blocks_snapshots_unmapped_networks_and_name_clashes(lab: Lab) -> None:
    with lab.vc.operator_session() as si:
        view = si.content.viewManager.CreateContainerView(
            si.content.rootFolder, [vim.VirtualMachine], True
        )
        vm = next(v for v in view.view if v.name == "DC0_VM00007")
        task = vm.CreateSnapshot_Task(name="keep", memory=False, quiesce=False)
        while task.info.state not in ("success", "error"):
            pass
        view.DestroyView()
    conn = libvirt.open(lab.kvm.uri)
    try:
        conn.defineXML(
            "<domain type='qemu'><name>DC0_VM00008</name><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64'>hvm</type></os></domain>"
        )
    finally:
        conn.close()
    plan = lab.plan("blocked", ["DC0_VM00007", "DC0_VM00008"], network_map={})
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    codes = {vm["name"]: {f["code"] for f in vm["findings"] if f["severity"] == "blocking"}
             for vm in report["vms"]}  # fmt: skip
    assert codes["DC0_VM00007"] >= {"snapshots", "unmapped_network"}
    assert codes["DC0_VM00008"] >= {"name_clash", "unmapped_network"}
    assert lab.api.post(f"/v1/migration-plans/{plan['id']}/start").status_code == 409
    # Editable while draft; a started plan is not (see the tests above).
    edited = lab.api.patch(f"/v1/migration-plans/{plan['id']}", json={"target_format": "raw"})
    assert edited.status_code == 200 and edited.json()["target_format"] == "raw"
    warm = lab.api.patch(f"/v1/migration-plans/{plan['id']}", json={"mode": "warm"})
    assert warm.status_code == 200 and warm.json()["mode"] == "warm"
    assert (
        lab.api.patch(f"/v1/migration-plans/{plan['id']}", json={"mode": "hot"}).status_code == 422
    )
