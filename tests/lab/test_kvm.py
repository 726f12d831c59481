"""The simulated KVM hosts behave like separate machines and clean up after themselves."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import libvirt
import pytest

from tessera.lab.kvm import (
    KvmHostSpec,
    RunningKvmHost,
    bridge_for,
    default_caps_cache,
    mock_node_xml,
    start_kvm_host,
    stop_pid,
)


def _mnt_ns(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/mnt")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.partition(") ")[2].startswith("Z")


def _namespace_pids(pid: int) -> list[int]:
    namespace = _mnt_ns(pid)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/mnt") == namespace and _alive(int(entry)):
                found.append(int(entry))
        except OSError:
            continue
    return found


def _qemu_pids(host: RunningKvmHost) -> list[int]:
    return [
        p
        for p in _namespace_pids(host.pid)
        if "qemu-system" in Path(f"/proc/{p}/comm").read_text()
        or "qemu-system" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
    ]


def test_demo_vm_runs_and_others_are_shut_off(kvm_host: RunningKvmHost) -> None:
    conn = libvirt.open(kvm_host.uri)
    try:
        states = {d.name(): d.state()[0] for d in conn.listAllDomains()}
        assert states == {
            "kvmshared-vm-1": libvirt.VIR_DOMAIN_RUNNING,
            "kvmshared-vm-2": libvirt.VIR_DOMAIN_SHUTOFF,
            "kvmshared-vm-3": libvirt.VIR_DOMAIN_SHUTOFF,
        }
        dom = conn.lookupByName("kvmshared-vm-1")
        assert dom.XMLDesc(0).startswith("<domain type='qemu'")
        assert [n.name() for n in conn.listAllNetworks() if n.isActive()]
    finally:
        conn.close()
    assert len(_qemu_pids(kvm_host)) == 1


def test_hosts_are_independent(kvm_host: RunningKvmHost, kvm_host_fresh: RunningKvmHost) -> None:
    assert kvm_host.uri != kvm_host_fresh.uri
    assert _mnt_ns(kvm_host.pid) != _mnt_ns(kvm_host_fresh.pid)
    fresh = libvirt.open(kvm_host_fresh.uri)
    shared = libvirt.open(kvm_host.uri)
    try:
        fresh.defineXML(
            "<domain type='qemu'><name>only-on-fresh</name><memory unit='MiB'>64</memory>"
            "<os><type arch='x86_64'>hvm</type></os></domain>"
        )
        assert "only-on-fresh" in {d.name() for d in fresh.listAllDomains()}
        assert "only-on-fresh" not in {d.name() for d in shared.listAllDomains()}
        macs_fresh = {m for d in fresh.listAllDomains() for m in _macs(d)}
        macs_shared = {m for d in shared.listAllDomains() for m in _macs(d)}
        assert macs_fresh and macs_shared
        assert not macs_fresh & macs_shared
    finally:
        fresh.close()
        shared.close()


def _macs(dom: libvirt.virDomain) -> list[str]:
    xml = dom.XMLDesc(0)
    return [part.split("'")[0] for part in xml.split("<mac address='")[1:]]


def test_capability_cache_is_reused(kvm_host: RunningKvmHost) -> None:
    """The second host on a machine must not re-probe QEMU (the ~10 s first call)."""
    shared = {p.name: p.stat().st_mtime_ns for p in default_caps_cache().glob("*.xml")}
    local = {
        p.name: p.stat().st_mtime_ns
        for p in (kvm_host.home / "cache/qemu/capabilities").glob("*.xml")
    }
    assert shared
    assert local == shared


def test_stop_ends_daemon_guests_and_bridges(tmp_path: Path) -> None:
    host = start_kvm_host(KvmHostSpec(name="stopme", demo_vms=2), tmp_path)
    try:
        members = _namespace_pids(host.pid)
        qemu = _qemu_pids(host)
        assert len(qemu) == 1
        assert bridge_for(str(host.home / "pool"), "a") in os.listdir("/sys/class/net")
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
        assert bridge_for(str(host.home / "pool"), "a") in rules
    finally:
        host.stop()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in members) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in members if _alive(p)]
    with pytest.raises(libvirt.libvirtError):
        libvirt.open(host.uri)
    bridge = bridge_for(str(host.home / "pool"), "a")
    assert bridge not in os.listdir("/sys/class/net")
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert bridge not in rules
    stop_pid(host.pid)  # a second stop is a no-op


def test_stop_pid_refuses_a_daemon_outside_the_lab() -> None:
    stop_pid(os.getpid())  # not a libvirtd: nothing happens
    assert _alive(os.getpid())


def test_mock_node_xml_describes_varied_domains() -> None:
    xml = mock_node_xml("n", 7).decode()
    assert xml.count("<domain ") == 7
    assert "<test:runstate>5</test:runstate>" in xml
    assert "<test:runstate>1</test:runstate>" in xml


def test_test_driver_host_lists_its_domains(kvm_test_host: RunningKvmHost) -> None:
    conn = libvirt.open(kvm_test_host.uri)
    try:
        assert conn.getType() == "TEST"
        names = {d.name() for d in conn.listAllDomains()}
        assert len(names) == 50
        assert "kvmtest-vm-50" in names
    finally:
        conn.close()
