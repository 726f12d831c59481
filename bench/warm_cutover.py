"""warm_cutover_s: the downtime of a warm migration, from the source's power-off to the
target running, for a 2 GiB disk with 1 % of its blocks changed since the last round.

One lab vCenter VM gets a 2 GiB flat disk (the lab guest at its start, random data in
the rest, so the full copy moves 2 GiB) and one lab KVM host is the target; the plan
(warm, qcow2) runs in this process through the API. Just before the power-off the guest
changes 1 % of the disk in 64 KiB blocks at random places (through the lab's disk
command, which CBT tracks), so the final delta carries them all. The clock starts when
the power-off starts and stops when libvirt has started the target: final delta, raw to
qcow2 conversion, digest compare, virtio check and domain definition all count.

    .venv/bin/python bench/warm_cutover.py
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from bench.common import machine, record
from tessera.api.app import create_app
from tessera.config import Settings
from tessera.lab import labdisk
from tessera.lab.guest import GUEST_SIZE
from tessera.lab.kvm import KvmHostSpec, start_kvm_host
from tessera.lab.vcsim import VcsimSpec, start_vcsim
from tessera.migration import warm, workflow
from tessera.migration.model import Phase
from tessera.runtime import Runtime, ensure_admin_token

SIZE = 2 << 30
BLOCK = 64 << 10
CHANGED = 0.01
VM = "DC0_VM00000"
_CHUNK = 8 << 20


def fill(lab: Any, disk: labdisk.LabDisk) -> None:
    """Random data after the guest, so every block of the disk is allocated."""
    for offset in range(GUEST_SIZE, SIZE, _CHUNK):
        labdisk.write(lab, disk, offset, os.urandom(_CHUNK))


def change_one_percent(lab: Any, disk: labdisk.LabDisk) -> int:
    blocks = random.sample(range(GUEST_SIZE // BLOCK, SIZE // BLOCK), int(SIZE / BLOCK * CHANGED))
    for block in blocks:
        labdisk.write(lab, disk, block * BLOCK, os.urandom(BLOCK))
    return len(blocks) * BLOCK


def wait(api: TestClient, path: str, done: Any, timeout_s: float = 900) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        found: dict[str, Any] = api.get(path).json()
        if done(found):
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting on {path}: {found}")
        time.sleep(0.2)


def register(api: TestClient, body: dict[str, Any]) -> str:
    made = api.post("/v1/providers", json=body)
    made.raise_for_status()
    provider_id = str(made.json()["id"])
    task = api.post(f"/v1/providers/{provider_id}/sync").json()["id"]
    wait(api, f"/v1/tasks/{task}", lambda t: t["state"] == "succeeded")
    return provider_id


def main() -> None:
    marks: dict[str, float] = {}
    power_off, boot = workflow._PHASES[Phase.POWER_OFF], workflow._PHASES[Phase.BOOT]

    def timed_power_off(ctx: Any, position: int) -> str:
        marks["changed"] = change_one_percent(vc, disk)  # the guest's last writes
        marks["off"] = time.monotonic()
        return power_off(ctx, position)

    def timed_boot(ctx: Any, position: int) -> str:
        started = boot(ctx, position)
        marks["running"] = time.monotonic()
        return started

    workflow._PHASES[Phase.POWER_OFF] = timed_power_off
    workflow._PHASES[Phase.BOOT] = timed_boot
    warm.ROUND_INTERVAL_S = 1.0
    with tempfile.TemporaryDirectory(prefix="tessera-bench-warm-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        vc = start_vcsim(VcsimSpec(vms=1), work / "vc")
        kvm = start_kvm_host(KvmHostSpec(name="benchwarm", demo_vms=0), work / "kvm")
        rt = Runtime.open(Settings(data_dir=work / "state", watch_enabled=False))
        try:
            disk = labdisk.install_flat_guest(vc, VM, SIZE)
            fill(vc, disk)
            with TestClient(create_app(runtime=rt, watch=False)) as api:
                api.headers["Authorization"] = f"Bearer {ensure_admin_token(rt.settings)}"
                source = register(
                    api,
                    {"name": "vc", "kind": "vsphere", "url": vc.url, "username": vc.username,
                     "password": vc.password, "verify_tls": False},
                )  # fmt: skip
                target = register(api, {"name": "kvm", "kind": "libvirt", "url": kvm.uri})
                nets = api.get("/v1/networks", params={"provider_id": target}).json()["items"]
                plain = next(n for n in nets if n["vlan_id"] is None)
                pool = api.get("/v1/datastores", params={"provider_id": target}).json()["items"][0]
                vms = api.get("/v1/vms", params={"provider_id": source, "name": VM}).json()
                src_nets = api.get("/v1/networks", params={"provider_id": source}).json()
                src_ds = api.get("/v1/datastores", params={"provider_id": source}).json()
                plan = api.post(
                    "/v1/migration-plans",
                    json={
                        "name": "bench-warm",
                        "source_provider_id": source,
                        "target_provider_id": target,
                        "vm_ids": [vms["items"][0]["id"]],
                        "network_map": {n["id"]: plain["id"] for n in src_nets["items"]},
                        "storage_map": {d["id"]: pool["id"] for d in src_ds["items"]},
                        "mode": "warm",
                    },
                ).json()
                task = api.post(f"/v1/migration-plans/{plan['id']}/start").json()["id"]
                done = wait(api, f"/v1/tasks/{task}", lambda t: t["state"] != "running" and
                            t["state"] != "queued")  # fmt: skip
                if done["state"] != "succeeded":
                    raise RuntimeError(f"the migration failed: {done['error']}")
                shown = api.get(f"/v1/migration-plans/{plan['id']}").json()
        finally:
            rt.close()
            kvm.stop()
            vc.stop()
    rounds = shown["vms"][0]["disks"][0]["rounds"]
    downtime = marks["running"] - marks["off"]
    print(machine())
    print(f"rounds (bytes, seconds): {[(r['bytes'], r['seconds']) for r in rounds]}")
    print(f"changed before power-off: {marks['changed']} bytes; downtime {downtime:.1f} s")
    record("warm_cutover_s", downtime, "s", ".venv/bin/python -m bench.warm_cutover")


if __name__ == "__main__":
    main()
