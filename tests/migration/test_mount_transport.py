"""Cold migration through a mounted datastore: a vSphere pool's datastore set as mounted
on this host (as an NFS datastore is on a conversion host) is read as files by qemu-img
instead of over the datastore's HTTPS interface. The lab's datastores are local folders,
so the lab's own datastore folder serves as the mount.

Checked: the mounts API (admins only, clear 422s, paths stored resolved); a migration
through the mount gives an identical disk and a guest that boots; hostile disks on the
mount (symlinks out of the VM's folder, an extent naming a host file) are refused before
anything is read.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.lab.guest import MARKER, NIC_PREFIX, install_guest
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration import disks, transfer
from tests.identity.tenants import as_client, ok
from tests.migration.test_cold_migration import Lab, _datastore_file, _vm


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


def _datastore(lab: Lab, vm_name: str) -> tuple[str, Path]:
    """The datastore of the VM's first disk: its name and the lab's folder for it."""
    name = _vm(lab.vc, vm_name)["disks"][0][0].partition("] ")[0].lstrip("[")
    return name, next((lab.vc.workdir / "datastores").glob(f"govcsim-*-{name}-*"))


def _set_mounts(lab: Lab, mounts: dict[str, str]) -> Any:
    return lab.api.put(f"/v1/providers/{lab.source}/datastore-mounts", json={"mounts": mounts})


def test_cold_migration_reads_the_mounted_datastore_and_boots(lab: Lab, tmp_path: Path) -> None:
    vm_name = "DC0_VM00000"
    install_guest(lab.vc, vm_name, tmp_path)
    before = _vm(lab.vc, vm_name)
    name, folder = _datastore(lab, vm_name)
    # Given through a symlink and a trailing "/.": stored and shown resolved.
    link = tmp_path / "ds-link"
    link.symlink_to(folder)
    shown = ok(_set_mounts(lab, {name: f"{link}/."}))
    real = os.path.realpath(folder)
    assert shown["datastore_mounts"] == {name: real}
    assert ok(lab.api.get(f"/v1/providers/{lab.source}"))["datastore_mounts"] == {name: real}

    plan = lab.plan("mounted", [vm_name])
    report = ok(lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness"))
    assert report["ready"], report
    (disk_finding,) = [f for f in report["vms"][0]["findings"] if f["code"] == "disk"]
    source_file = _datastore_file(lab.vc, before["disks"][0][0])
    assert disk_finding["message"].endswith(
        f"transport: mounted datastore {os.path.realpath(source_file)}"
    ), disk_finding

    task = lab.run(plan)
    assert task["state"] == "succeeded", task.get("error")
    (vm,) = ok(lab.api.get(f"/v1/migration-plans/{plan['id']}"))["vms"]
    (disk,) = vm["disks"]
    assert disk["state"] == "done" and disk["done_bytes"] == disk["total_bytes"] > 0
    assert disk["mib_s"] > 0 and disk["eta_s"] == 0 and disk["identical"]
    events = ok(lab.api.get("/v1/events", params={"object_id": plan["id"], "limit": 200}))
    copied = [e["message"] for e in events["items"] if "copy done" in e["message"]]
    assert copied and "from the mounted datastore" in copied[0], copied

    target_file = lab.kvm.home / "pool" / disk["volume"]
    compared = subprocess.run(
        ["qemu-img", "compare", "-f", "vmdk", "-F", "qcow2", str(source_file), str(target_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr

    dom = lab.domain(vm_name)
    assert dom is not None
    serial = Path(dom.find("devices/serial/source").get("path")).read_text(errors="replace")
    assert MARKER in serial
    assert [ln.split()[-1] for ln in serial.splitlines() if ln.startswith(NIC_PREFIX)] == (
        before["macs"]
    )

    undone = lab.run(plan, "rollback")
    assert undone["state"] == "succeeded", undone
    assert lab.domain(vm_name) is None and not target_file.exists()
    cleared = ok(_set_mounts(lab, {}))
    assert cleared["datastore_mounts"] is None


def _descriptor(path: Path, extent: str) -> None:
    path.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        f'createType="monolithicFlat"\nRW 2048 FLAT "{extent}" 0\n'
    )


def test_hostile_disks_on_the_mount_are_refused_before_any_read(lab: Lab, tmp_path: Path) -> None:
    sentinel = tmp_path / "host-secret.raw"
    sentinel.write_bytes(b"secret" * 200_000)
    host_vmdk = tmp_path / "host.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(host_vmdk), "1M"], check=True)
    for path in (sentinel, host_vmdk):
        os.utime(path, (1_000_000, 2_000_000))  # atime older than mtime: a read moves it
    cases = {"DC0_VM00001": sentinel, "DC0_VM00002": host_vmdk, "DC0_VM00003": sentinel}
    ok(_set_mounts(lab, {n: str(f) for n, f in (_datastore(lab, vm) for vm in cases)}))

    def disk_file(vm_name: str) -> Path:
        return _datastore_file(lab.vc, _vm(lab.vc, vm_name)["disks"][0][0])

    # A flat extent with a plain name, which is a symlink to a host file.
    descriptor = disk_file("DC0_VM00001")
    _descriptor(descriptor, "DC0_VM00001-flat.vmdk")
    flat = descriptor.with_name("DC0_VM00001-flat.vmdk")
    flat.unlink(missing_ok=True)
    flat.symlink_to(sentinel)
    # The disk file itself a symlink to a host image.
    linked = disk_file("DC0_VM00002")
    linked.unlink()
    linked.symlink_to(host_vmdk)
    # An extent naming the host file by its absolute path.
    _descriptor(disk_file("DC0_VM00003"), str(sentinel))

    plan = lab.plan("hostile-mount", list(cases))
    report = ok(lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness"))
    assert not report["ready"]
    for vm in report["vms"]:
        refused = [f for f in vm["findings"] if f["code"] == "disk_refused"]
        assert refused and "outside its folder" in refused[0]["message"], vm
    answer = lab.api.post(f"/v1/migration-plans/{plan['id']}/start")
    assert answer.status_code == 409 and answer.json()["code"] == "plan_not_ready"
    for path in (sentinel, host_vmdk):
        assert os.stat(path).st_atime == 1_000_000, f"{path} was read"
    assert ok(lab.api.get(f"/v1/migration-plans/{plan['id']}"))["state"] == "draft"
    assert not list((lab.kvm.home / "pool").glob(f"mig-{plan['id'][:8]}-*"))
    ok(_set_mounts(lab, {}))


def test_a_folder_resolving_outside_the_mount_is_refused(tmp_path: Path) -> None:
    mount, outside = tmp_path / "ds", tmp_path / "elsewhere"
    (mount / "vm").mkdir(parents=True)
    outside.mkdir()
    (outside / "disk.vmdk").write_bytes(b"KDMV")
    (mount / "vm" / "disk.vmdk").write_bytes(b"KDMV")
    (mount / "escape").symlink_to(outside)
    for folder in ("../elsewhere", "escape", "/" + str(outside)):
        with pytest.raises(disks.DiskRefused, match="outside the mounted datastore"):
            transfer.mounted_file(mount, folder, "disk.vmdk")
    found = transfer.mounted_file(mount, "vm", "disk.vmdk")
    assert found.path == (mount / "vm" / "disk.vmdk").resolve()
    with pytest.raises(disks.DiskRefused, match="not a regular file"):
        transfer.mounted_file(mount, "", "vm")
    with pytest.raises(transfer.TransferError, match="no readable"):
        transfer.mounted_file(mount, "vm", "missing.vmdk")


def test_only_admins_set_mounts_and_bad_ones_get_a_clear_422(lab: Lab, tmp_path: Path) -> None:
    name, folder = _datastore(lab, "DC0_VM00000")
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    bad = {
        "relative/path": "absolute path",
        "/": "cannot be /",
        "/tmp/..": "cannot be /",
        str(tmp_path / "missing"): "not an existing directory",
        str(a_file): "not an existing directory",
        "": "must be a path",
    }
    for path, message in bad.items():
        answer = _set_mounts(lab, {name: path})
        assert answer.status_code == 422, (path, answer.text)
        assert message in answer.json()["message"], (path, answer.json())
    unknown = _set_mounts(lab, {"NoSuchDS": str(folder)})
    assert unknown.status_code == 422 and "not a datastore of this pool" in unknown.text
    kvm = lab.api.put(
        f"/v1/providers/{lab.target}/datastore-mounts", json={"mounts": {name: str(folder)}}
    )
    assert kvm.status_code == 422 and "only a vSphere pool" in kvm.json()["message"]
    assert ok(lab.api.get(f"/v1/providers/{lab.source}"))["datastore_mounts"] is None

    project = ok(lab.api.post("/v1/projects", json={"name": "mounts"}), 201)["id"]
    user = ok(lab.api.post("/v1/users", json={"name": "pa", "password": "pw-pa-12345"}), 201)
    ok(
        lab.api.put(f"/v1/projects/{project}/members/{user['id']}", json={"role": "project-admin"}),
        204,
    )
    token = ok(lab.api.post("/v1/auth/login", json={"user": "pa", "password": "pw-pa-12345"}))
    project_admin = as_client(lab.api, token["token"])
    refused = project_admin.put(
        f"/v1/providers/{lab.source}/datastore-mounts", json={"mounts": {name: str(folder)}}
    )
    assert refused.status_code == 403, refused.text
    assert ok(lab.api.get(f"/v1/providers/{lab.source}"))["datastore_mounts"] is None
    audit = ok(lab.api.get("/v1/audit", params={"action": "set_provider_datastore_mounts"}))
    assert {e["status_code"] for e in audit["items"]} >= {403, 422}
