"""Time a 10,000-VM inventory read: raw page bytes vs list_inventory vs naive pyvmomi.

Starts its own lab vCenter (or uses --url/--username/--password of a running one).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pyVmomi import vim

from tessera.lab.vcsim import VcsimSpec, start_vcsim
from tessera.providers.base import Endpoint
from tessera.providers.vsphere import VSphereProvider, parse
from tessera.providers.vsphere.soap import MoRef, filter_spec_xml, token_of


def raw_pages(p: VSphereProvider) -> tuple[float, int, int]:
    """Seconds for the VM pages to arrive as bytes: the same requests as list_inventory,
    one after the other, nothing parsed."""
    view = p._view([vim.VirtualMachine])
    client = p._soap()
    this = p._collector().xml("_this")
    spec = filter_spec_xml(
        MoRef("ContainerView", view._moId), {"VirtualMachine": parse.VM_PROPERTIES}
    )
    try:
        t = time.perf_counter()
        page = client.call_raw(
            "RetrievePropertiesEx",
            f"{this}<specSet>{spec}</specSet><options><maxObjects>{p.page_size}</maxObjects></options>",
        )
        pages = [page]
        while (token := token_of(page)) is not None:
            page = client.call_raw("ContinueRetrievePropertiesEx", f"{this}<token>{token}</token>")
            pages.append(page)
        return time.perf_counter() - t, len(pages), sum(len(b) for b in pages)
    finally:
        client.close()
        view.DestroyView()


def naive(p: VSphereProvider, limit: int) -> tuple[float, int]:
    """pyvmomi one object at a time: each attribute read is a round trip."""
    content = p._si.content
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    vms: list[Any] = list(view.view)
    t = time.perf_counter()
    for vm in vms[:limit]:
        _ = (
            vm.name,
            vm.runtime.powerState,
            vm.runtime.host,
            vm.config.hardware.numCPU,
            vm.config.hardware.memoryMB,
            vm.config.guestFullName,
            vm.config.template,
            vm.config.instanceUuid,
            vm.config.annotation,
            vm.config.hardware.device,
        )
    view.DestroyView()
    return time.perf_counter() - t, len(vms)


def large_lab(vms: int) -> VcsimSpec:
    """The lab vCenter the sync benchmarks read: `vms` VMs over 36 hosts."""
    return VcsimSpec(
        vms=vms,
        clusters=4,
        hosts_per_cluster=8,
        standalone_hosts=4,
        datastores=4,
        dvs_portgroups=8,
        standard_portgroups=2,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--vms", type=int, default=10_000)
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive-subset", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        spec = large_lab(args.vms)
        t = time.perf_counter()
        lab = start_vcsim(spec, Path(tmp))
        print(
            f"simulator start: {time.perf_counter() - t:.2f} s wall "
            f"({lab.start_seconds:.2f} s inside the simulator) for {args.vms} VMs"
        )
        try:
            p = VSphereProvider(
                Endpoint(
                    url=lab.url,
                    username=lab.username,
                    password=lab.password,
                    verify_tls=False,
                    timeout_s=120,
                ),
                page_size=args.page_size,
            )
            p.connect()
            raw, inv = [], []
            for _ in range(args.repeat):
                seconds, pages, size = raw_pages(p)
                raw.append(seconds)
                t = time.perf_counter()
                snap = p.list_inventory()
                inv.append(time.perf_counter() - t)
            r, i = statistics.median(raw), statistics.median(inv)
            print(f"raw VM pages: {r:.3f} s ({pages} pages, {size / 1e6:.1f} MB)")
            print(
                f"list_inventory: {i:.3f} s ({len(snap.vms)} VMs, {len(snap.hosts)} hosts, "
                f"{len(snap.networks)} networks) = {i / r:.2f}x raw"
            )
            seconds, total = naive(p, args.naive_subset)
            per_vm = seconds / min(args.naive_subset, total)
            print(
                f"naive pyvmomi: {seconds:.2f} s for {min(args.naive_subset, total)} VMs "
                f"-> extrapolated {per_vm * total:.1f} s for {total} VMs"
            )
            p.close()
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
