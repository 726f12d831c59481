"""`tessera lab up/down/status`: the whole lab, with its state in one JSON file.

The simulators outlive the command that starts them; the state file remembers their pids
and endpoints so `down` and `status` work from any later process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tessera.lab import kvm, vcsim
from tessera.network.dataplane import daemons


@dataclass
class LabSpec:
    vcenters: int = 1
    datacenters: int = 1
    clusters: int = 2
    hosts_per_cluster: int = 2
    vms: int = 40
    kvm_hosts: int = 2
    kvm_demo_vms: int = 3
    test_hosts: int = 0
    test_domains: int = 1000


@dataclass
class VCenterEntry:
    name: str
    url: str
    username: str
    password: str
    instance_uuid: str
    pid: int


@dataclass
class KvmEntry:
    name: str
    uri: str
    pid: int
    driver: str
    ovsdb: str = ""  # its switch (kvm.start_host_switch), the pool's network setting
    netns: str = ""


@dataclass
class LabState:
    vcenters: list[VCenterEntry] = field(default_factory=list)
    kvm_hosts: list[KvmEntry] = field(default_factory=list)

    @classmethod
    def load(cls, lab_dir: Path) -> LabState:
        path = lab_dir / "state.json"
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(
            vcenters=[VCenterEntry(**item) for item in raw.get("vcenters", [])],
            kvm_hosts=[KvmEntry(**item) for item in raw.get("kvm_hosts", [])],
        )

    def save(self, lab_dir: Path) -> None:
        lab_dir.mkdir(parents=True, exist_ok=True)
        path = lab_dir / "state.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(self), handle, indent=2)


def pid_alive(pid: int) -> bool:
    """Whether a lab process still runs (a zombie does not)."""
    return daemons.alive(pid)


def lab_up(spec: LabSpec, lab_dir: Path) -> LabState:
    """Start what is not already running; running members are kept as they are."""
    state = LabState.load(lab_dir)
    state.vcenters = [v for v in state.vcenters if pid_alive(v.pid)]
    state.kvm_hosts = [h for h in state.kvm_hosts if pid_alive(h.pid)]
    try:
        for index in range(len(state.vcenters), spec.vcenters):
            running = vcsim.start_vcsim(
                vcsim.VcsimSpec(
                    datacenters=spec.datacenters,
                    clusters=spec.clusters,
                    hosts_per_cluster=spec.hosts_per_cluster,
                    vms=spec.vms,
                    password=vcsim.lab_password(),
                ),
                lab_dir / f"vcenter-{index + 1}",
            )
            state.vcenters.append(
                VCenterEntry(
                    name=f"vcenter-{index + 1}",
                    url=running.url,
                    username=running.username,
                    password=running.password,
                    instance_uuid=running.instance_uuid,
                    pid=running.pid,
                )
            )
            state.save(lab_dir)
        wanted = [(f"kvm-{i + 1}", "qemu") for i in range(spec.kvm_hosts)] + [
            (f"kvmtest-{i + 1}", "test") for i in range(spec.test_hosts)
        ]
        have = {h.name for h in state.kvm_hosts}
        for name, driver in wanted:
            if name in have:
                continue
            host = kvm.start_kvm_host(
                kvm.KvmHostSpec(
                    name=name,
                    driver="qemu" if driver == "qemu" else "test",
                    demo_vms=spec.kvm_demo_vms,
                    test_domains=spec.test_domains if driver == "test" else 0,
                ),
                lab_dir,
            )
            state.kvm_hosts.append(KvmEntry(name=name, uri=host.uri, pid=host.pid, driver=driver))
            state.save(lab_dir)
        for entry in state.kvm_hosts:
            if entry.driver == "qemu":
                switch = kvm.start_host_switch(lab_dir / entry.name)
                entry.ovsdb, entry.netns = switch.ovsdb, switch.netns
    finally:
        state.save(lab_dir)
    return state


def lab_down(lab_dir: Path) -> LabState:
    """Stop every member; returns what was stopped."""
    state = LabState.load(lab_dir)
    for vc in state.vcenters:
        vcsim.stop_pid(vc.pid)
    for host in state.kvm_hosts:
        kvm.stop_pid(host.pid)
        if host.ovsdb:
            kvm.stop_host_switch(lab_dir / host.name)
    LabState().save(lab_dir)
    return state
