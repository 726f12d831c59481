"""Adopting 10,000 VMs in place: VMs per minute from the POST to the task's success.

The inventory comes from a real sync of a 10,000-VM lab vCenter into SQLite. The API runs
as in the demo (uvicorn, one process, tasks run in it, no watchers); the client submits
`POST /v1/vms/adopt` for every VM of the pool into a project with quotas set (so each
chunk's quota check runs), then polls the task until it has succeeded. Between rounds
the VMs are released again (timed too, not recorded).

    .venv/bin/python -m bench.adopt [--vms 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, lab_vcenter_spec, machine, record, start_api
from bench.vsphere_parse import large_lab
from tessera.config import Settings
from tessera.inventory import pools
from tessera.lab.vcsim import start_vcsim
from tessera.runtime import Runtime, ensure_admin_token

COMMAND = ".venv/bin/python -m bench.adopt"


def seed(data_dir: Path, vms: int) -> tuple[str, str]:
    """Sync a lab vCenter of `vms` VMs into a fresh SQLite DB; the pool's id and a token."""
    lab = start_vcsim(large_lab(vms), data_dir / "lab")
    try:
        settings = Settings(data_dir=data_dir)
        rt = Runtime.open(settings)
        pid = pools.add_provider(rt, lab_vcenter_spec(lab)).id
        pools.sync_provider(rt, pid)
        rt.close()
        return pid, ensure_admin_token(settings)
    finally:
        lab.stop()


def timed(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds from the POST to the task's end, and the task."""
    started = time.perf_counter()
    answer = client.post(path, json=body)
    answer.raise_for_status()
    task_id = answer.json()["id"]
    while True:
        task: dict[str, Any] = client.get(f"/v1/tasks/{task_id}").json()
        if task["state"] in {"succeeded", "failed", "cancelled"}:
            return time.perf_counter() - started, task
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        data_dir = Path(tmp)
        pid, token = seed(data_dir, args.vms)
        port = free_port()
        env = {
            "TESSERA_DATA_DIR": str(data_dir),
            "TESSERA_WATCH_ENABLED": "false",
            "TESSERA_API_PORT": str(port),
        }
        api = start_api(env, port)
        adopt_s: list[float] = []
        release_s: list[float] = []
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )
            project = client.post("/v1/projects", json={"name": "bench"}).json()["id"]
            limits = {
                "vms": args.vms,
                "vcpus": 100 * args.vms,
                "ram_mib": 1 << 40,
                "disk_gib": 1 << 30,
            }
            client.put(f"/v1/projects/{project}/quota", json=limits).raise_for_status()
            for _ in range(args.rounds):
                select = {"provider_id": pid}
                body = {"select": select, "project_id": project, "expected_count": args.vms}
                seconds, task = timed(client, "/v1/vms/adopt", body)
                assert task["state"] == "succeeded", task
                assert task["result"]["succeeded"] == args.vms, task["result"]
                adopt_s.append(seconds)
                release = {"select": {"project_id": project}, "expected_count": args.vms}
                seconds, task = timed(client, "/v1/vms/release", release)
                assert task["state"] == "succeeded", task
                release_s.append(seconds)
        finally:
            api.terminate()
            api.wait(30)
    adopt, release = statistics.median(adopt_s), statistics.median(release_s)
    print(f"adopt {args.vms} VMs: {[round(s, 2) for s in adopt_s]} s -> median {adopt:.2f} s")
    print(f"release {args.vms} VMs: {[round(s, 2) for s in release_s]} s -> median {release:.2f} s")
    print(machine())
    record("adopt_10k_vms_per_min", args.vms / adopt * 60, "VMs/min", COMMAND)


if __name__ == "__main__":
    main()
