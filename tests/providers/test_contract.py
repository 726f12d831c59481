"""The contract every provider passes against its real backend (Nova's driver-test idea).

The same assertions run for vSphere (lab vCenter) and libvirt (lab libvirtd with QEMU).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from typing import Any

import pytest

from tessera.domain.inventory import PowerState
from tessera.providers import DRIVERS, driver_class, open_provider
from tessera.providers.base import Capabilities, Endpoint, Provider
from tessera.providers.faults import ProviderAuthFailed, ProviderUnreachable

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def endpoint_of(kind: str, lab_member: Any) -> Endpoint:
    if kind == "vsphere":
        return Endpoint(
            url=lab_member.url,
            username=lab_member.username,
            password=lab_member.password,
            verify_tls=False,
        )
    return Endpoint(url=lab_member.uri)


@pytest.fixture(params=sorted(DRIVERS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def endpoint(kind: str, request: pytest.FixtureRequest) -> Endpoint:
    member = request.getfixturevalue("vcsim" if kind == "vsphere" else "kvm_host")
    return endpoint_of(kind, member)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_declares_kind_and_capabilities(kind: str) -> None:
    cls = driver_class(kind)
    assert issubclass(cls, Provider)
    assert cls.kind == kind
    assert isinstance(cls.capabilities, Capabilities)
    assert set(cls.capabilities.as_dict()) == set(Capabilities.__dataclass_fields__)


def test_connect_reports_the_endpoint(endpoint: Endpoint, kind: str) -> None:
    provider = open_provider(kind, endpoint)
    about = provider.connect()
    try:
        assert about.product and about.version and about.instance_uuid
    finally:
        provider.close()
        provider.close()  # closing twice is harmless


def test_inventory_is_self_consistent(endpoint: Endpoint, kind: str) -> None:
    with open_provider(kind, endpoint) as provider:
        snap = provider.list_inventory()
    assert snap.hosts and snap.vms
    host_ids = {h.native_id for h in snap.hosts}
    cluster_ids = {c.native_id for c in snap.clusters}
    network_ids = {n.native_id for n in snap.networks}
    datastore_ids = {d.native_id for d in snap.datastores}
    vm_ids = [vm.native_id for vm in snap.vms]
    assert len(vm_ids) == len(set(vm_ids)), "native ids are unique"
    assert all(h.cluster_native_id in cluster_ids | {None} for h in snap.hosts)
    macs: list[str] = []
    for vm in snap.vms:
        assert vm.name
        assert isinstance(vm.power_state, PowerState)
        assert vm.host_native_id in host_ids | {None}
        assert vm.cpu_count >= 1 and vm.memory_mib >= 1
        assert [nic.order for nic in vm.nics] == list(range(len(vm.nics)))
        for nic in vm.nics:
            assert MAC.match(nic.mac), nic.mac
            assert nic.network_native_id in network_ids | {None}
            macs.append(nic.mac)
        for disk in vm.disks:
            assert disk.size_bytes > 0 and disk.key
            assert disk.datastore_native_id in datastore_ids | {None}
    assert len(macs) == len(set(macs)), "MACs are unique within a pool"
    assert any(vm.disks for vm in snap.vms) and any(vm.nics for vm in snap.vms)
    assert {vm.power_state for vm in snap.vms} >= {PowerState.RUNNING, PowerState.STOPPED}


def test_watch_is_established_promptly_and_stops(endpoint: Endpoint, kind: str) -> None:
    stop = threading.Event()
    with open_provider(kind, endpoint) as provider:
        started = time.monotonic()
        stream = provider.watch(stop)
        first = next(stream)
        assert isinstance(first, list)
        assert time.monotonic() - started < 15
        stop.set()
        deadline = time.monotonic() + 10
        for _ in stream:
            assert time.monotonic() < deadline, "watch did not honour stop"


def test_unreachable_endpoint_is_a_retryable_fault(kind: str) -> None:
    port = _closed_port()
    url = (
        f"https://127.0.0.1:{port}/sdk"
        if kind == "vsphere"
        else f"qemu+tcp://127.0.0.1:{port}/system"
    )
    provider = open_provider(
        kind, Endpoint(url=url, username="u", password="p", verify_tls=False, timeout_s=5)
    )
    with pytest.raises(ProviderUnreachable) as info:
        provider.connect()
    assert info.value.retryable


def test_wrong_password_is_auth_failed_without_the_password(vcsim: Any) -> None:
    endpoint = Endpoint(
        url=vcsim.url, username=vcsim.username, password="Wr0ng-canary", verify_tls=False
    )
    provider = open_provider("vsphere", endpoint)
    with pytest.raises(ProviderAuthFailed) as info:
        provider.connect()
    assert not info.value.retryable
    assert "Wr0ng-canary" not in str(info.value) + repr(info.value) + str(info.value.detail)
    assert "Wr0ng-canary" not in repr(endpoint)
