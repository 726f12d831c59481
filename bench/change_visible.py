"""How long a change made in vCenter takes to show through the API: p95 over many changes.

A lab vCenter is registered and the API runs as in the embedded default (uvicorn with
in-process watchers). An operator's pyvmomi session then powers VMs off and renames them,
one at a time; the clock starts when the task is issued and stops when GET /v1/vms/{id}
first shows the new state or name (polled every 10 ms).

    .venv/bin/python -m bench.change_visible [--vms 1000] [--changes 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pyVim.task import WaitForTask
from pyVmomi import vim

from bench.common import free_port, lab_vcenter_spec, machine, record, start_api
from tessera.config import Settings
from tessera.inventory import pools
from tessera.lab.vcsim import VcsimSpec, start_vcsim
from tessera.runtime import Runtime, ensure_admin_token

COMMAND = ".venv/bin/python -m bench.change_visible"


def wait_until(
    client: httpx.Client, path: str, check: str, expected: str, timeout_s: float = 10
) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if client.get(path).json().get(check) == expected:
            return time.perf_counter()
        time.sleep(0.01)
    raise TimeoutError(f"{path} did not show {check}={expected} in {timeout_s} s")


def measure(client: httpx.Client, si: Any, changes: int) -> list[float]:
    """Power off and rename running VMs in turn; seconds until the API shows each change."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    running = [vm for vm in view.view if vm.runtime.powerState == "poweredOn"]
    view.Destroy()
    latencies: list[float] = []
    for index, vm in enumerate(running[:changes]):
        found = client.get("/v1/vms", params={"name": vm.name, "limit": 5}).json()["items"]
        vm_id = next(item["id"] for item in found if item["name"] == vm.name)
        if index % 2 == 0:
            started = time.perf_counter()
            task = vm.PowerOffVM_Task()
            seen = wait_until(client, f"/v1/vms/{vm_id}", "power_state", "stopped")
        else:
            new_name = f"renamed-{index}"
            started = time.perf_counter()
            task = vm.Rename_Task(new_name)
            seen = wait_until(client, f"/v1/vms/{vm_id}", "name", new_name)
        WaitForTask(task)
        latencies.append(seen - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=60)
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as tmp:
        lab = start_vcsim(
            VcsimSpec(vms=args.vms, clusters=2, hosts_per_cluster=4), Path(tmp) / "lab"
        )
        api = None
        try:
            settings = Settings(data_dir=Path(tmp) / "state")
            rt = Runtime.open(settings)
            pools.add_provider(rt, lab_vcenter_spec(lab))
            rt.close()
            port = free_port()
            api = start_api({"TESSERA_DATA_DIR": str(settings.data_dir)}, port)
            token = ensure_admin_token(settings)
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
            )
            deadline = time.monotonic() + 60
            while client.get("/v1/vms", params={"limit": 1}).json()["items"] == []:
                assert time.monotonic() < deadline, "the watcher never synced"
                time.sleep(0.2)
            with lab.operator_session() as si:
                latencies = measure(client, si, args.changes)
        finally:
            if api is not None:
                api.terminate()
                api.wait(10)
            lab.stop()
    latencies.sort()
    p95 = statistics.quantiles(latencies, n=100, method="inclusive")[94]
    print(
        f"{len(latencies)} changes: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms ({args.vms} VMs in the lab)"
    )
    print(machine())
    record("change_visible_p95_s", p95, "s", COMMAND)


if __name__ == "__main__":
    main()
