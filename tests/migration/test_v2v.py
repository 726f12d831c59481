"""virt-v2v-in-place end to end: a lab VM carrying the lab's Debian guest (a real Debian
that libguestfs inspection recognises, tessera.lab.debian_guest) is cold-migrated to a
lab KVM host through the plan API. The virtio phase must convert the copy with
virt-v2v-in-place (its progress kept in the plan task's events), and the target must
boot under TCG through libvirt on virtio-blk and virtio-net and print the lab marker and
the source's MACs in NIC order.

That test is slow (minutes under TCG): the libguestfs appliance starts twice
(inspection, then the conversion) and a Debian kernel boots. The fast ones check the
guest's recipe reads the host's own apt source and that a blank disk starts no appliance.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.config import Settings
from tessera.lab.debian_guest import (
    DISK_PREFIX,
    AptSource,
    apt_source,
    build_debian_guest,
    image_path,
    missing_tools,
)
from tessera.lab.guest import DONE, MARKER, NIC_PREFIX, GuestError, install_image
from tessera.lab.kvm import RunningKvmHost
from tessera.lab.vcsim import RunningVcsim
from tessera.migration import virtio
from tests.migration.test_cold_migration import Lab, _vm
from tests.tasks.helpers import submitted, wait_task

VM_NAME = "DC0_VM00000"
TASK_TIMEOUT_S = 1500


@pytest.fixture(scope="module")
def debian_image() -> Path:
    """The cached Debian guest, built here if the setup did not; skipped only when it is
    missing and this machine cannot build it."""
    try:
        cached = image_path()
    except GuestError as exc:
        pytest.skip(f"the Debian lab guest cannot be built here: {exc.message}")
    if not cached.exists() and missing_tools():
        pytest.skip(
            f"the Debian lab guest is not cached ({cached}) and cannot be built here: "
            f"missing {', '.join(missing_tools())}"
        )
    return build_debian_guest()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "state", watch_enabled=False, task_retry_interval_s=0.2)


@pytest.fixture
def lab(api: TestClient, vcsim_module: RunningVcsim, kvm_host_module: RunningKvmHost) -> Lab:
    return Lab(api, vcsim_module, kvm_host_module)


def test_the_guest_comes_from_the_hosts_own_debian_suite(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("# deb http://old.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "extra.list").write_text(
        "deb [arch=amd64] https://vendor.example/apt stable main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Types: deb-src deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main contrib\n"
    )
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert apt_source(tmp_path, release) == AptSource("http://mirror.example/debian", "bookworm")

    release.write_text("VERSION_CODENAME=trixie\n")
    with pytest.raises(GuestError, match="trixie"):
        apt_source(tmp_path, release)


def test_a_blank_disk_is_left_as_it_is(tmp_path: Path) -> None:
    disk = tmp_path / "blank.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    result = virtio.prepare("blank", [disk], "qcow2")
    assert result.road is virtio.Road.NONE and "no data" in result.message
    assert not result.prints_markers


@pytest.mark.slow
# virt-v2v-in-place under TCG took 100 s to 7 min here: its own bounds (V2V_TIMEOUT_S and
# the inspection's) end it, not the suite's 600 s guard against hangs.
@pytest.mark.timeout(1800)
def test_virt_v2v_in_place_converts_a_debian_guest_that_boots_on_virtio(
    lab: Lab, debian_image: Path, tmp_path: Path
) -> None:
    install_image(lab.vc, VM_NAME, debian_image, tmp_path)
    before = _vm(lab.vc, VM_NAME)
    assert len(before["macs"]) >= 1
    plan = lab.plan("debian-v2v", [VM_NAME], "qcow2")
    report = lab.api.post(f"/v1/migration-plans/{plan['id']}/readiness").json()
    assert report["ready"], report
    road = next(f for f in report["vms"][0]["findings"] if f["code"] == "guest_os")
    assert "virt-v2v-in-place" in road["message"]

    task = wait_task(
        lab.api,
        submitted(lab.api.post(f"/v1/migration-plans/{plan['id']}/start")),
        TASK_TIMEOUT_S,
    )
    assert task["state"] == "succeeded", task.get("error")
    (vm,) = lab.api.get(f"/v1/migration-plans/{plan['id']}").json()["vms"]
    assert vm["state"] == "migrated"

    # virt-v2v-in-place ran on the copy: its progress is in the task's events, and the
    # target no longer equals the source (the copy itself was compared before it ran).
    events = lab.api.get("/v1/events", params={"task_id": task["id"]}).json()["items"]
    virtio_done = [
        e["message"]
        for e in events
        if e["kind"] == "migration.phase.done" and e["after"]["phase"] == "virtio"
    ]
    assert len(virtio_done) == 1, events
    assert "virt-v2v-in-place converted debian 12" in virtio_done[0]
    assert "Finishing off" in virtio_done[0]
    (disk,) = vm["disks"]
    assert disk["identical"] is True
    target_file = lab.kvm.home / "pool" / disk["volume"]
    compared = subprocess.run(
        # The target is the larger (the VM's disk size): its tail is compared with zeros.
        ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(debian_image), str(target_file)],
        capture_output=True,
        check=False,
    )
    assert compared.returncode == 1, compared.stdout

    # The target: virtio disk and NICs, the source's MACs in order.
    dom = lab.domain(VM_NAME)
    assert dom is not None
    assert [d.find("target").get("bus") for d in dom.findall("devices/disk")] == ["virtio"]
    ifaces = dom.findall("devices/interface")
    assert [i.find("model").get("type") for i in ifaces] == ["virtio"] * len(before["macs"])
    assert [i.find("mac").get("address") for i in ifaces] == before["macs"]

    # It booted under TCG on them: the guest saw a virtio disk (vda) and virtio NICs
    # carrying the source's MACs in NIC order.
    serial = Path(dom.find("devices/serial/source").get("path")).read_text(errors="replace")
    assert MARKER in serial and DONE in serial, serial[-2000:]
    nics = [ln.split() for ln in serial.splitlines() if ln.startswith(NIC_PREFIX)]
    assert [n[-1] for n in nics] == before["macs"]
    assert {n[2] for n in nics} == {"virtio_net"}
    disks_seen = next(ln for ln in serial.splitlines() if ln.startswith(DISK_PREFIX)).split()[1:]
    assert "vda" in disks_seen and not any(d.startswith(("sd", "hd")) for d in disks_seen)
