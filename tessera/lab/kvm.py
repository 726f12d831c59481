"""Simulated KVM hosts: one real libvirtd per host, side by side on one machine.

libvirtd's driver state paths are fixed, so each host's daemon runs in its own mount
namespace with per-host folders bind-mounted over /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt, /var/log/libvirt and /etc/libvirt. The daemon forks into the
background and outlives the Python process that started it; `stop_pid` finds everything
left in that namespace (libvirtd, its QEMU guests) and ends it, then removes the bridges
and firewall rules libvirt put into the shared network namespace.

Guests are always `type='qemu'` (TCG): KVM guests fail in this sandbox.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import libvirt
from lxml import etree

from tessera.lab import LabError
from tessera.network.dataplane import iproute
from tessera.network.dataplane.ovs import OvsInstance

KvmDriver = Literal["qemu", "test"]

_BIND_TARGETS: dict[str, str] = {
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
    "etc": "/etc/libvirt",
}
_CAPS_SUBDIR = Path("cache/qemu/capabilities")
_TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
_START_TIMEOUT_S = 30.0


@dataclass
class KvmHostSpec:
    """What to simulate: `driver="qemu"` runs real TCG guests, `"test"` serves libvirt's
    in-memory mock driver (fast, for large fake inventories).

    `ovs_rundir` is the run folder (OVS_RUNDIR, holding `db.sock`) of the Open vSwitch
    whose database libvirt's `ovs-vsctl` plugs this host's guest taps into; None means
    the system's. The taps are made in the machine's network namespace, so only a switch
    whose ovs-vswitchd runs there can open them."""

    name: str
    driver: KvmDriver = "qemu"
    port: int = 0
    demo_vms: int = 3
    test_domains: int = 0
    ovs_rundir: Path | None = None


@dataclass
class RunningKvmHost:
    """A started host. `pid` is the libvirtd pid; keep it in a state file for `stop_pid`."""

    name: str
    uri: str
    pid: int
    port: int
    home: Path
    start_seconds: float = field(default=0.0, compare=False)

    def stop(self) -> None:
        """End the daemon, its guests and its network leftovers."""
        stop_pid(self.pid)


def default_caps_cache() -> Path:
    """Shared QEMU capability cache; survives test sessions so only the first host ever
    pays libvirt's ~10 s QEMU probe."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "tessera" / "libvirt-qemu-caps"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_kvm_host(
    spec: KvmHostSpec, workdir: Path, *, caps_cache: Path | None = None
) -> RunningKvmHost:
    """Start one host's libvirtd under `workdir/<name>/` and, for the qemu driver, seed it
    with demo content the first time. Returns once the daemon answers.

    Restarting over an existing folder keeps the host's definitions (a restarted host
    finds its guests shut off, as after a power cut)."""
    started = time.monotonic()
    home = (workdir / spec.name).resolve()
    port = spec.port or free_port()
    for sub in (*_BIND_TARGETS, "sock", "pool"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    _write_configs(home, port)
    caps_dir = caps_cache if caps_cache is not None else default_caps_cache()
    if spec.driver == "qemu":
        _copy_caps(caps_dir, home / _CAPS_SUBDIR)
        uri = f"qemu+tcp://127.0.0.1:{port}/system"
    else:
        node_xml = home / "node.xml"
        node_xml.write_bytes(mock_node_xml(spec.name, spec.test_domains))
        uri = f"test+tcp://127.0.0.1:{port}{node_xml}"
    pid = _launch(home, ovs_rundir=spec.ovs_rundir)
    try:
        _wait_answering(uri, pid)
        seeded = home / ".seeded"
        if spec.driver == "qemu" and not seeded.exists():
            seed_demo(uri, spec.demo_vms, spec.name, pool_dir=home / "pool")
            seeded.touch()
        if spec.driver == "qemu":
            _probe_all_emulators(uri)
            _copy_caps(home / _CAPS_SUBDIR, caps_dir)
    except BaseException:
        stop_pid(pid)
        raise
    return RunningKvmHost(
        name=spec.name,
        uri=uri,
        pid=pid,
        port=port,
        home=home,
        start_seconds=time.monotonic() - started,
    )


def _write_configs(home: Path, port: int) -> None:
    etc = home / "etc"
    # A stable host UUID per simulated host: without SMBIOS libvirtd would pick a random
    # one at each start, and all hosts on this machine would otherwise look alike.
    host_uuid = uuid.uuid5(uuid.NAMESPACE_URL, f"tessera-lab:{home}")
    (etc / "libvirtd.conf").write_text(
        f'host_uuid = "{host_uuid}"\n'
        "listen_tls = 0\n"
        "listen_tcp = 1\n"
        f'tcp_port = "{port}"\n'
        'listen_addr = "127.0.0.1"\n'
        'auth_tcp = "none"\n'
        f'unix_sock_dir = "{home / "sock"}"\n'
        f'log_outputs = "3:file:{home / "log" / "libvirtd.log"}"\n'
        # Peers that vanish must be noticed quickly by the daemon too.
        "keepalive_interval = 2\nkeepalive_count = 3\n"
    )
    # Root-owned QEMU with no confinement: lab folders live under 0700 temp dirs, and
    # neither cgroups nor private /dev namespaces work in this sandbox.
    (etc / "qemu.conf").write_text(
        'stdio_handler = "file"\n'
        'user = "root"\ngroup = "root"\n'
        'security_driver = "none"\n'
        "namespaces = []\n"
        "cgroup_controllers = []\n"
    )


def _copy_caps(src: Path, dst: Path) -> None:
    """Copy capability cache files that differ, keeping mtimes (so a re-probe by libvirt
    shows up as a newer file)."""
    if not src.is_dir():
        return
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*.xml"):
        target = dst / path.name
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        tmp = dst / f".{path.name}.tmp"
        shutil.copy2(path, tmp)
        tmp.replace(target)


def _launch(home: Path, *, ovs_rundir: Path | None = None) -> int:
    binds = " && ".join(
        f"mount --bind {shlex.quote(str(home / sub))} {target}"
        for sub, target in _BIND_TARGETS.items()
    )
    pidfile = home / "libvirtd.pid"
    pidfile.unlink(missing_ok=True)
    for target in _BIND_TARGETS.values():
        Path(target).mkdir(parents=True, exist_ok=True)
    # libvirt's QEMU capability cache records the host's CPUID, and CPUID leaf 0x1f
    # carries the x2APIC id of the CPU the probing thread ran on: an unpinned daemon
    # finds a cache written on the other CPU "outdated" and re-probes (~4-12 s). Pinning
    # libvirtd to CPU 0 makes the shared cache valid; libvirt gives QEMU guests all CPUs.
    script = (
        f"{binds} && exec taskset -c 0 libvirtd --listen -d"
        f" -f {shlex.quote(str(home / 'etc' / 'libvirtd.conf'))} -p {shlex.quote(str(pidfile))}"
    )
    # libvirt runs ovs-vsctl with the daemon's own environment.
    env = {**os.environ, "OVS_RUNDIR": str(ovs_rundir.resolve())} if ovs_rundir else None
    with (home / "log" / "launch.log").open("wb") as log:
        subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=_START_TIMEOUT_S,
        )
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return int(pidfile.read_text().strip())
        time.sleep(0.05)
    raise LabError(f"libvirtd for {home.name} wrote no pid file; see {home / 'log'}")


def _wait_answering(uri: str, pid: int) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if not _is_libvirtd(pid):
            raise LabError(f"libvirtd (pid {pid}) for {uri} exited during start")
        try:
            conn = libvirt.open(uri)
        except libvirt.libvirtError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        conn.close()
        return


def _probe_all_emulators(uri: str) -> None:
    """Have libvirt probe (or load from cache) every installed QEMU binary now, so the
    shared cache holds them all: host capabilities cover i386 as well as x86_64, and an
    unprobed binary costs a client's first getCapabilities ~4 s."""
    conn = libvirt.open(uri)
    try:
        conn.getCapabilities()
    finally:
        conn.close()


def mac_for(prefix: str, vm_index: int, nic_index: int) -> str:
    """A deterministic MAC: 16 bits from the host prefix, then VM and NIC index."""
    digest = hashlib.sha256(prefix.encode()).digest()
    last = (vm_index * 2 + nic_index) & 0xFF
    return f"52:54:00:{digest[0]:02x}:{digest[1]:02x}:{last:02x}"


def bridge_for(key: str, suffix: str) -> str:
    """A bridge name (kernel limit: 15 characters) derived from `key`; bridges live in the
    machine's one network namespace, so the key must be unique per host and per lab
    (seed_demo uses the host's pool folder)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"tsr{digest}{suffix}"[:15]


def seed_demo(uri: str, count: int, prefix: str, *, pool_dir: Path) -> None:
    """Give a qemu-driver host a pool, networks and `count` small VMs named
    "<prefix>-vm-N"; start VM 1 and leave the rest shut off.

    The isolated network has no IP, so it needs no dnsmasq. libvirt refuses a VLAN tag on
    an isolated network, so the tagged network is an Open vSwitch bridge network: it can
    be defined and started without OVS, but guests cannot start on it, so only the
    inventory (and no VM) uses it.
    """
    bridge_key = str(pool_dir.resolve())
    conn = libvirt.open(uri)
    try:
        pool = conn.storagePoolDefineXML(
            f"<pool type='dir'><name>{escape(prefix)}-pool</name>"
            f"<target><path>{escape(str(pool_dir))}</path></target></pool>"
        )
        pool.create()
        pool.setAutostart(1)
        net_name = f"{prefix}-net"
        for xml in (
            f"<network><name>{escape(net_name)}</name>"
            f"<bridge name='{bridge_for(bridge_key, 'a')}' stp='off'/></network>",
            f"<network><name>{escape(prefix)}-vlan42</name><forward mode='bridge'/>"
            f"<bridge name='{bridge_for(bridge_key, 'b')}'/><virtualport type='openvswitch'/>"
            "<vlan><tag id='42'/></vlan></network>",
        ):
            net = conn.networkDefineXML(xml)
            net.create()
            net.setAutostart(1)
        for index in range(1, count + 1):
            vol_name = f"{prefix}-vm-{index}.qcow2"
            pool.createXML(
                f"<volume><name>{escape(vol_name)}</name>"
                f"<capacity unit='MiB'>{32 * index}</capacity>"
                "<target><format type='qcow2'/></target></volume>"
            )
            nics = 2 if index % 2 == 0 else 1
            dom = conn.defineXML(
                _demo_domain_xml(prefix, index, f"{prefix}-pool", vol_name, net_name, nics)
            )
            if index == 1:
                dom.create()
    finally:
        conn.close()


def _demo_domain_xml(
    prefix: str, index: int, pool: str, volume: str, network: str, nics: int
) -> str:
    interfaces = "".join(
        f"<interface type='network'><mac address='{mac_for(prefix, index, nic)}'/>"
        f"<source network={quoteattr(network)}/><model type='virtio'/></interface>"
        for nic in range(nics)
    )
    memory = 64 if index % 2 else 128
    return (
        "<domain type='qemu'>"
        f"<name>{escape(prefix)}-vm-{index}</name>"
        f"<description>Tessera demo VM {index} on {escape(prefix)}</description>"
        f"<memory unit='MiB'>{memory}</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>"
        "<devices>"
        "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source pool={quoteattr(pool)} volume={quoteattr(volume)}/>"
        "<target dev='vda' bus='virtio'/></disk>"
        f"{interfaces}"
        "<serial type='pty'/><console type='pty'/>"
        "</devices></domain>"
    )


_TEST_STATES = (1, 1, 5, 5, 5, 3, 7)  # running, running, shut off x3, paused, pmsuspended


def mock_node_xml(prefix: str, domains: int) -> bytes:
    """Node XML for libvirt's test driver: a host, one pool with a volume per domain, one
    network and `domains` domains in varied states with disks and NICs."""
    node = etree.Element("node", nsmap={"test": _TEST_NS})
    cpu = etree.SubElement(node, "cpu")
    for tag, text in (
        ("mhz", "2400"),
        ("model", "x86_64"),
        ("active", "16"),
        ("nodes", "1"),
        ("sockets", "2"),
        ("cores", "4"),
        ("threads", "2"),
    ):
        etree.SubElement(cpu, tag).text = text
    etree.SubElement(node, "memory").text = str(64 * 1024 * 1024)
    net = etree.SubElement(node, "network")
    etree.SubElement(net, "name").text = f"{prefix}-net"
    etree.SubElement(net, "bridge", name=bridge_for(prefix, "t"))
    pool = etree.SubElement(node, "pool", type="dir")
    etree.SubElement(pool, "name").text = f"{prefix}-pool"
    etree.SubElement(pool, "capacity", unit="TiB").text = "64"
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = f"/pool/{prefix}"
    for index in range(1, domains + 1):
        name = f"{prefix}-vm-{index}"
        vol = etree.SubElement(pool, "volume")
        etree.SubElement(vol, "name").text = f"{name}.qcow2"
        etree.SubElement(vol, "capacity", unit="GiB").text = str(1 + index % 20)
        # Thin volumes: the test driver subtracts allocations from the pool's capacity.
        etree.SubElement(vol, "allocation", unit="MiB").text = "256"
        etree.SubElement(etree.SubElement(vol, "target"), "format", type="qcow2")
        node.append(_test_domain(prefix, index, name))
    return etree.tostring(node, pretty_print=True)


def _test_domain(prefix: str, index: int, name: str) -> etree._Element:
    dom = etree.Element("domain", type="test", nsmap={"test": _TEST_NS})
    etree.SubElement(dom, "name").text = name
    etree.SubElement(dom, "description").text = f"fake guest {index}"
    etree.SubElement(dom, "memory", unit="MiB").text = str(512 * (1 + index % 4))
    etree.SubElement(dom, "vcpu").text = str(1 + index % 4)
    os_el = etree.SubElement(dom, "os")
    etree.SubElement(os_el, "type").text = "hvm"
    devices = etree.SubElement(dom, "devices")
    disk = etree.SubElement(devices, "disk", type="file", device="disk")
    etree.SubElement(disk, "driver", name="qemu", type="qcow2")
    etree.SubElement(disk, "source", file=f"/pool/{prefix}/{name}.qcow2")
    etree.SubElement(disk, "target", dev="vda", bus="virtio")
    for nic in range(1 + index % 2):
        iface = etree.SubElement(devices, "interface", type="network")
        etree.SubElement(iface, "mac", address=_test_mac(index, nic))
        etree.SubElement(iface, "source", network=f"{prefix}-net")
        etree.SubElement(iface, "model", type="virtio")
    etree.SubElement(dom, f"{{{_TEST_NS}}}runstate").text = str(
        _TEST_STATES[index % len(_TEST_STATES)]
    )
    return dom


def _test_mac(index: int, nic: int) -> str:
    value = index * 2 + nic
    return f"52:54:01:{(value >> 16) & 0xFF:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"


def _mnt_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _is_libvirtd(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # "pid (comm) state ..."; a zombie is as good as gone.
    comm, _, rest = stat.partition(") ")
    return comm.endswith("(libvirtd") and not rest.startswith("Z")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.partition(") ")[2].startswith("Z")


def _namespace_members(namespace: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _mnt_ns(int(entry)) == namespace:
            pids.append(int(entry))
    return pids


def _active_bridges(pid: int) -> list[str]:
    """Bridges of the host's active networks, read through the daemon's own view of
    /run/libvirt (its mount namespace)."""
    bridges = []
    for path in Path(f"/proc/{pid}/root/run/libvirt/network").glob("*.xml"):
        with contextlib.suppress(OSError, etree.XMLSyntaxError):
            root = etree.parse(str(path)).getroot()
            net = root if root.tag == "network" else root.find("network")
            if net is not None and net.find("forward") is None:
                bridge = net.find("bridge")
                if bridge is not None and bridge.get("name"):
                    bridges.append(str(bridge.get("name")))
    return bridges


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """Stop the lab host whose libvirtd has `pid`: every process in its mount namespace
    (the daemon and its QEMU guests), then its bridges and firewall rules. Does nothing if
    `pid` is no longer a libvirtd (already stopped, or the pid was reused)."""
    if not _is_libvirtd(pid):
        return
    namespace = _mnt_ns(pid)
    if namespace is None:
        return
    if namespace == _mnt_ns(os.getpid()):
        raise ValueError(f"pid {pid} is a libvirtd outside any lab namespace; not stopping it")
    bridges = _active_bridges(pid)
    members = _namespace_members(namespace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for member in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, sig)
        deadline = time.monotonic() + timeout_s / 2
        while time.monotonic() < deadline and any(_alive(m) for m in members):
            time.sleep(0.05)
        members = [m for m in members if _alive(m)]
        if not members:
            break
    for bridge in bridges:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False, timeout=10)
    if bridges:
        _drop_firewall_rules(bridges)


def _drop_firewall_rules(bridges: list[str]) -> None:
    """Delete the iptables rules libvirt added for `bridges` (they outlive the daemon)."""
    for save, tool in (("iptables-save", "iptables"), ("ip6tables-save", "ip6tables")):
        dump = subprocess.run(
            [save], capture_output=True, text=True, check=False, timeout=10
        ).stdout
        table = "filter"
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
                continue
            words = line.split()
            if not line.startswith("-A ") or not any(b in words for b in bridges):
                continue
            subprocess.run(
                [tool, "-w", "-t", table, "-D", *shlex.split(line)[1:]],
                capture_output=True,
                check=False,
                timeout=10,
            )


@dataclass(frozen=True)
class HostSwitch:
    """A lab host's Open vSwitch: its own ovsdb-server and ovs-vswitchd (userspace
    datapath) under the host's folder, the switch's bridges in the host's network
    namespace (one per host, so every host can have its `br-default`), its database on a
    loopback port: the pool's `ovsdb` network setting."""

    netns: str
    ovsdb: str


def host_netns(home: Path) -> str:
    """The namespace standing for a lab host: unique per host folder (two labs, e.g. the
    demo's and a test's, may both have a `kvm-1`)."""
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:8]
    return f"tlab-{digest}-{home.name}"


def start_host_switch(home: Path, *, port: int = 0) -> HostSwitch:
    """Start (or find running) the host's switch; safe to repeat."""
    netns = host_netns(home)
    iproute.add_namespace(netns)
    port_file = home / "ovs" / "manager-port"
    if not port and port_file.exists():
        port = int(port_file.read_text())
    switch = OvsInstance(home / "ovs", netns=netns, manager_port=port or free_port())
    switch.start()
    port_file.write_text(str(switch.manager_port))
    return HostSwitch(netns, f"tcp:127.0.0.1:{switch.manager_port}")


def stop_host_switch(home: Path) -> None:
    """Stop the host's switch and delete its namespace; a stopped one is fine."""
    OvsInstance(home / "ovs").stop()
    iproute.delete_namespace(host_netns(home))
